//! Pictures: the embedded default, files, cropping and resizing, and refusals.

use speckle::picture::{Picture, MAX_SIDE};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("speckle-picture-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_default_image_is_a_colour_square_in_range() {
    let p = Picture::default_image();
    assert_eq!((p.width, p.height, p.channels), (128, 128, 3));
    assert_eq!(p.planes.len(), 3 * 128 * 128);
    assert!(p.planes.iter().all(|&v| (0.0..=1.0).contains(&v)));
    // A photograph: every channel varies.
    for c in 0..3 {
        let plane = &p.planes[c * 128 * 128..(c + 1) * 128 * 128];
        let (lo, hi) = plane
            .iter()
            .fold((1.0f32, 0.0f32), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(hi - lo > 0.5, "channel {c}: {lo}..{hi}");
    }
}

#[test]
fn squares_average_when_shrinking_and_crop_the_centre() {
    // A 6 x 4 grey image whose central 4 x 4 square is a 2 x 2 checkerboard of 2 x 2 blocks.
    let mut planes = vec![0.0f32; 24];
    for y in 0..4 {
        for x in 0..6 {
            let (cx, cy) = (x as i32 - 1, y);
            planes[y * 6 + x] = if !(0..4).contains(&cx) {
                0.5
            } else if (cx / 2 + cy as i32 / 2) % 2 == 0 {
                1.0
            } else {
                0.0
            };
        }
    }
    let p = Picture {
        width: 6,
        height: 4,
        channels: 1,
        planes,
    };
    let s = p.square(2).unwrap();
    assert_eq!((s.width, s.height), (2, 2));
    for (v, want) in s.planes.iter().zip([1.0, 0.0, 0.0, 1.0]) {
        assert!((v - want).abs() < 1e-6, "{:?}", s.planes);
    }
    let one = p.square(1).unwrap();
    assert!((one.planes[0] - 0.5).abs() < 1e-6, "{:?}", one.planes);
    assert!(p.square(0).is_err());
    // Cells interleave the planes back.
    let rgb = Picture::default_image().square(4).unwrap();
    let cell = rgb.to_cell("x");
    assert_eq!(cell.data.len(), 48);
    assert_eq!(cell.data[1], rgb.planes[16]);
}

#[test]
fn files_load_and_bad_files_are_refused_clearly() {
    let dir = scratch("files");
    let path = dir.join("default.png");
    std::fs::write(&path, speckle::picture::DEFAULT_IMAGE).unwrap();
    assert_eq!(Picture::load(&path).unwrap(), Picture::default_image());

    let missing = dir.join("missing.png");
    let e = Picture::load(&missing).unwrap_err().to_string();
    assert!(e.contains("missing.png"), "{e}");

    let text = dir.join("notes.png");
    std::fs::write(&text, "not an image").unwrap();
    let e = Picture::load(&text).unwrap_err().to_string();
    assert!(
        e.contains("notes.png") && e.contains("not a readable"),
        "{e}"
    );

    // A PNG whose header claims 5000 x 5000: refused from the header, before decoding.
    let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&5000u32.to_be_bytes());
    ihdr.extend_from_slice(&5000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    big.extend_from_slice(&13u32.to_be_bytes());
    big.extend_from_slice(&ihdr);
    big.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    for chunk in [&b"IDAT"[..], &b"IEND"[..]] {
        big.extend_from_slice(&0u32.to_be_bytes());
        big.extend_from_slice(chunk);
        big.extend_from_slice(&crc32(chunk).to_be_bytes());
    }
    let huge = dir.join("huge.png");
    std::fs::write(&huge, &big).unwrap();
    let e = Picture::load(&huge).unwrap_err().to_string();
    assert!(
        e.contains("5000 x 5000") && e.contains(&MAX_SIDE.to_string()),
        "{e}"
    );
}

/// CRC-32 (IEEE) of a PNG chunk's type and data.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

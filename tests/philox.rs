//! Philox4x32-10: the CPU generator against Random123's published known-answer vectors, and
//! the WGSL generator against the CPU, bit for bit, on a million words.

mod common;

use common::{gpu, gpu_with_binding_limit};
use speckle::cpu::philox;
use speckle::ops::random_fill::{self, Distribution, RandomSpec};

/// Random123 `tests/kat_vectors`, the philox4x32 10-round lines: counter, key, output.
const KAT: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
    (
        [0, 0, 0, 0],
        [0, 0],
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
    ),
    (
        [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
        [0xffffffff, 0xffffffff],
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
    ),
    (
        [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
        [0xa4093822, 0x299f31d0],
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ),
];

#[test]
fn cpu_generator_matches_the_random123_vectors() {
    for (counter, key, expected) in KAT {
        assert_eq!(
            philox::philox4x32_10(counter, key),
            expected,
            "counter {counter:x?} key {key:x?}"
        );
    }
}

#[test]
fn the_mapping_is_the_documented_one() {
    let seed = 0x0123_4567_89ab_cdef_u64;
    assert_eq!(philox::key(seed), [0x89ab_cdef, 0x0123_4567]);
    // Entry (i, j) of stream t: counter (j / 4, i, t, 0), word j % 4.
    let words = philox::philox4x32_10([5, 7, 1, 0], philox::key(seed));
    assert_eq!(philox::block(seed, 1, 7, 5), words);
    let spec = RandomSpec {
        distribution: Distribution::Bits,
        ..RandomSpec::gaussian(seed, 1)
    };
    for t in 0..4 {
        assert_eq!(
            speckle::cpu::random_fill::entry(&spec, 7, 20 + t),
            f64::from(words[t as usize])
        );
    }
    assert_eq!(philox::uniform(u32::MAX), 1.0 - 2f32.powi(-24));
    assert_eq!(philox::uniform(0), 0.0);
    assert_eq!(philox::uniform_open(0), 2f32.powi(-24));
}

/// The raw words of a `[rows, cols]` fill, read back bit for bit.
fn gpu_words(gpu: &speckle::Gpu, spec: &RandomSpec, rows: usize, cols: usize) -> Vec<u32> {
    let t = random_fill::run(gpu, &[rows, cols], spec).unwrap();
    let bytes = gpu.read_bytes(t.buffer(), 0, t.size_bytes()).unwrap();
    bytemuck::pod_collect_to_vec(&bytes)
}

#[test]
fn gpu_words_equal_cpu_words_on_a_million_draws() {
    let gpu = gpu();
    // Odd sizes: the last block of every row is partial; a large row index and a large seed.
    let (rows, cols) = (1009, 999);
    let spec = RandomSpec {
        distribution: Distribution::Bits,
        row0: 4_000_000_000,
        ..RandomSpec::gaussian(0xdead_beef_cafe_f00d, 3)
    };
    let got = gpu_words(gpu, &spec, rows, cols);
    let mut mismatches = 0;
    for r in 0..rows {
        for q in 0..cols.div_ceil(4) {
            let words = philox::block(spec.seed, spec.stream, spec.row0 + r as u32, q as u32);
            for (t, &word) in words.iter().enumerate() {
                let c = 4 * q + t;
                if c < cols && got[r * cols + c] != word {
                    if mismatches < 5 {
                        eprintln!(
                            "row {r} col {c}: GPU {:08x}, CPU {word:08x}",
                            got[r * cols + c]
                        );
                    }
                    mismatches += 1;
                }
            }
        }
    }
    assert_eq!(mismatches, 0, "of {} words", rows * cols);
}

#[test]
fn chunked_fills_continue_the_same_stream() {
    let spec = RandomSpec {
        distribution: Distribution::Bits,
        ..RandomSpec::gaussian(42, 0)
    };
    let whole = gpu_words(gpu(), &spec, 50, 77);
    let small = gpu_with_binding_limit(1024);
    assert_eq!(
        gpu_words(&small, &spec, 50, 77),
        whole,
        "row blocks of a 1 KiB binding"
    );
}

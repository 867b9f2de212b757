//! PNG figures: line plots (sizes, colours, axes, log ticks, gaps, errors), image grids (size
//! arithmetic, exact pixels), text clipping, and PNG saving (round trip, atomic failure).
//! Nothing here needs a GPU.

use std::path::PathBuf;

use speckle::plot::{
    draw_text, save_png, series_color, text_width, Cell, ImageGrid, LinePlot, Rgb, RgbImage,
    Series, GRID_LABEL_GAP, GRID_PAD, PALETTE,
};
use speckle::Error;

/// A scratch directory unique to one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("speckle-plot-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn count_color(
    img: &RgbImage,
    x: std::ops::Range<u32>,
    y: std::ops::Range<u32>,
    c: Rgb<u8>,
) -> usize {
    y.flat_map(|y| x.clone().map(move |x| (x, y)))
        .filter(|&(x, y)| *img.get_pixel(x, y) == c)
        .count()
}

fn is_dark(p: &Rgb<u8>) -> bool {
    p.0.iter().all(|&v| v < 80)
}

fn is_white(p: &Rgb<u8>) -> bool {
    p.0 == [255, 255, 255]
}

fn sine_plot(n_series: usize) -> LinePlot {
    let mut p = LinePlot::new("Test plot", "x", "y");
    for s in 0..n_series {
        let pts = (0..50)
            .map(|i| {
                let x = i as f64 * 0.2;
                (x, (x + s as f64).sin() + s as f64 * 0.1)
            })
            .collect();
        p.series.push(Series {
            name: format!("series {s}"),
            points: pts,
            dashed: s % 2 == 1,
        });
    }
    p
}

#[test]
fn a_line_plot_has_its_size_axes_and_every_series_colour_inside_the_frame() {
    let mut p = sine_plot(PALETTE.len() + 1);
    p.width = 640;
    p.height = 400;
    p.hlines.push((0.5, "threshold".into()));
    let img = p.render().unwrap();
    assert_eq!(img.dimensions(), (640, 400));
    let a = p.plot_area().unwrap();
    assert!(a.x > 0 && a.y > 0 && a.x + a.width < 640 && a.y + a.height < 400);
    // Every series' colour appears inside the data area (not only in the legend).
    for i in 0..p.series.len() {
        let c = series_color(i);
        let n = count_color(&img, a.x..a.x + a.width, a.y..a.y + a.height, c);
        assert!(
            n > 50,
            "series {i}: only {n} pixels of colour {c:?} in the data area"
        );
    }
    // The frame: dark along the left and the bottom of the data area.
    for y in a.y..a.y + a.height {
        assert!(
            is_dark(img.get_pixel(a.x - 1, y)),
            "left axis at row {y}: {:?}",
            img.get_pixel(a.x - 1, y)
        );
    }
    for x in a.x..a.x + a.width {
        let p = img.get_pixel(x, a.y + a.height);
        assert!(is_dark(p), "bottom axis at column {x}: {p:?}");
    }
    // Tick labels: non-white pixels left of the left axis and under the bottom one.
    let left = (0..a.x - 8)
        .flat_map(|x| (a.y..a.y + a.height).map(move |y| (x, y)))
        .filter(|&(x, y)| !is_white(img.get_pixel(x, y)))
        .count();
    assert!(
        left > 20,
        "{left} non-white pixels in the y tick label margin"
    );
    let below = (a.x..a.x + a.width)
        .flat_map(|x| (a.y + a.height + 8..400).map(move |y| (x, y)))
        .filter(|&(x, y)| !is_white(img.get_pixel(x, y)))
        .count();
    assert!(
        below > 20,
        "{below} non-white pixels in the x tick label margin"
    );
    // Background is white.
    assert!(is_white(img.get_pixel(0, 399)));
}

#[test]
fn a_log_y_plot_over_six_decades_draws_its_tick_labels() {
    let mut p = LinePlot::new("", "depth", "norm");
    p.log_y = true;
    p.series.push(Series::new(
        "gamma^L",
        (0..=12)
            .map(|l| (l as f64, 1e-3 * 10f64.powf(l as f64 / 2.0)))
            .collect(),
    ));
    let img = p.render().unwrap();
    let a = p.plot_area().unwrap();
    assert_eq!(img.dimensions(), (800, 500));
    // One label per decade, 1e-3 .. 1e3: seven rows of text in the margin left of the frame.
    let rows_with_ink: Vec<u32> = (a.y.saturating_sub(4)..a.y + a.height + 4)
        .filter(|&y| (0..a.x - 8).any(|x| !is_white(img.get_pixel(x, y))))
        .collect();
    let bands = 1 + rows_with_ink.windows(2).filter(|w| w[1] > w[0] + 1).count();
    assert!(
        bands >= 7,
        "{bands} text bands in the y label margin, want one per decade (7)"
    );
    let c = series_color(0);
    assert!(count_color(&img, a.x..a.x + a.width, a.y..a.y + a.height, c) > 100);
}

#[test]
fn gaps_from_nan_infinity_and_non_positive_values_on_log_axes_do_not_panic() {
    let mut p = LinePlot::new("gaps", "x", "y");
    p.log_x = true;
    p.log_y = true;
    p.series.push(Series::new(
        "holes",
        vec![
            (1.0, 1.0),
            (2.0, f64::NAN),
            (3.0, 0.0),
            (4.0, -1.0),
            (5.0, 2.0),
            (f64::INFINITY, 3.0),
            (0.0, 3.0),
            (-2.0, 5.0),
            (10.0, 4.0),
            (20.0, 8.0),
        ],
    ));
    p.series.push(Series::dashed(
        "all invalid",
        vec![(f64::NAN, 1.0), (1.0, -3.0)],
    ));
    p.series.push(Series::new("empty", vec![]));
    p.hlines.push((-5.0, "not drawable on log y".into()));
    p.hlines.push((f64::NAN, "nan".into()));
    let img = p.render().unwrap();
    let a = p.plot_area().unwrap();
    assert!(
        count_color(
            &img,
            a.x..a.x + a.width,
            a.y..a.y + a.height,
            series_color(0)
        ) > 10
    );

    // A single point, a constant series, a linear plot with NaN and infinities.
    let mut q = LinePlot::new("one point", "", "");
    q.series.push(Series::new("p", vec![(3.0, 3.0)]));
    q.render().unwrap();
    q.series[0].points = vec![(0.0, 0.0), (1.0, 0.0), (f64::NEG_INFINITY, f64::NAN)];
    q.render().unwrap();
    q.log_y = true;
    q.series[0].points = vec![(0.0, 100.0), (1.0, 100.0)];
    q.render().unwrap();
    q.series[0].points = vec![(0.0, 1e-300), (1.0, 1e300)];
    q.render().unwrap();
}

#[test]
fn plots_with_nothing_to_draw_or_no_room_are_errors() {
    let p = LinePlot::new("empty", "x", "y");
    let e = p.render().unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(e.to_string().contains("no series"), "{e}");

    let mut p = LinePlot::new("nan", "x", "y");
    p.series
        .push(Series::new("a", vec![(f64::NAN, 1.0), (1.0, f64::NAN)]));
    p.series.push(Series::new("b", vec![]));
    let e = p.render().unwrap_err();
    assert!(e.to_string().contains("can be drawn"), "{e}");

    let mut p = LinePlot::new("log", "x", "y");
    p.log_y = true;
    p.series
        .push(Series::new("a", vec![(1.0, 0.0), (2.0, -1.0)]));
    let e = p.render().unwrap_err();
    assert!(e.to_string().contains("y > 0"), "{e}");

    let mut p = sine_plot(1);
    p.width = 50;
    let e = p.render().unwrap_err();
    assert!(e.to_string().contains("50x500"), "{e}");
    let mut p = sine_plot(1);
    p.height = 10;
    assert!(p.render().is_err());
    let mut p = sine_plot(1);
    p.width = 250;
    p.series[0].name = "a very long series name that leaves no room for data".into();
    let e = p.render().unwrap_err();
    assert!(e.to_string().contains("legend"), "{e}");

    let mut p = LinePlot::new("huge range", "x", "y");
    p.series
        .push(Series::new("a", vec![(0.0, -1e308), (1.0, 1e308)]));
    assert!(p.render().is_err());
}

fn gray_cell(seed: u32) -> Cell {
    let data = (0..64)
        .map(|i| ((i * 7 + seed * 13) % 256) as f32 / 255.0)
        .collect();
    Cell::gray(8, 8, data, format!("{seed}.0 dB"))
}

#[test]
fn image_grid_size_follows_the_documented_layout() {
    let cells = (0..2)
        .map(|r| (0..3).map(|c| Some(gray_cell(r * 3 + c))).collect())
        .collect();
    let mut g = ImageGrid::new(cells, 4);
    let img = g.render().unwrap();
    // No labels, no title; captions "0.0 dB" are 48 px, wider than the 32 px cells.
    let (p, gap) = (GRID_PAD, GRID_LABEL_GAP);
    let slot_w = 48;
    let slot_h = 32 + gap + 8;
    assert_eq!(img.width(), p + 3 * slot_w + 2 * p + p);
    assert_eq!(img.height(), p + 2 * slot_h + p + p);

    // With labels and a title.
    g.row_labels = vec!["input".into(), "recon".into()];
    g.col_labels = vec!["a".into(), "b".into(), "c".into()];
    g.title = "T".into();
    let img = g.render().unwrap();
    let label_w = 5 * 8 + p;
    assert_eq!(img.width(), p + label_w + 3 * slot_w + 2 * p + p);
    assert_eq!(img.height(), p + (16 + p) + (8 + gap) + 2 * slot_h + p + p);
    let l = g.layout().unwrap();
    assert_eq!((l.width, l.height), img.dimensions());
    assert_eq!(l.cell_x[0], p + label_w + (slot_w - 32) / 2);
    assert_eq!(l.cell_y[1], p + (16 + p) + (8 + gap) + slot_h + p);
}

#[test]
fn image_grid_cells_are_nearest_upscaled_values_times_255() {
    let gray = gray_cell(5);
    let rgb_data: Vec<f32> = (0..8 * 8 * 3)
        .map(|i| ((i * 11) % 256) as f32 / 255.0)
        .collect();
    let mut clamped = rgb_data.clone();
    clamped[0] = -0.5; // clamps to 0
    clamped[1] = 7.0; // clamps to 1
    let rgb = Cell::rgb(8, 8, clamped, "");
    let g = ImageGrid::new(vec![vec![Some(gray.clone()), None, Some(rgb)]], 3);
    let img = g.render().unwrap();
    let l = g.layout().unwrap();
    assert_eq!((l.cell_width, l.cell_height), (24, 24));
    for y in 0..24 {
        for x in 0..24 {
            let (sx, sy) = ((x / 3) as usize, (y / 3) as usize);
            let v = (gray.data[sy * 8 + sx] * 255.0).round() as u8;
            let got = img.get_pixel(l.cell_x[0] + x, l.cell_y[0] + y);
            assert_eq!(got.0, [v, v, v], "grey cell at ({x}, {y})");
            let i = (sy * 8 + sx) * 3;
            let want: [u8; 3] = std::array::from_fn(|k| {
                let v = match i + k {
                    0 => 0.0,
                    1 => 1.0,
                    j => rgb_data[j],
                };
                (v * 255.0f32).round() as u8
            });
            let got = img.get_pixel(l.cell_x[2] + x, l.cell_y[0] + y);
            assert_eq!(got.0, want, "rgb cell at ({x}, {y})");
            // The None cell is blank.
            assert!(is_white(img.get_pixel(l.cell_x[1] + x, l.cell_y[0] + y)));
        }
    }
}

#[test]
fn inconsistent_image_grids_are_errors() {
    let ok = || Some(gray_cell(1));
    let bad = |g: ImageGrid, needle: &str| {
        let e = g.render().unwrap_err();
        assert!(e.to_string().contains(needle), "{e} (want {needle:?})");
    };
    bad(ImageGrid::new(vec![], 2), "no cells");
    bad(
        ImageGrid::new(vec![vec![ok(), ok()], vec![ok()]], 2),
        "row 1 has 1",
    );
    bad(
        ImageGrid::new(vec![vec![None, None]], 2),
        "every cell is empty",
    );
    bad(ImageGrid::new(vec![vec![ok()]], 0), "scale 0");
    let small = Cell::gray(4, 4, vec![0.5; 16], "");
    bad(
        ImageGrid::new(vec![vec![ok(), Some(small)]], 2),
        "same size",
    );
    let short = Cell::gray(8, 8, vec![0.5; 10], "");
    bad(ImageGrid::new(vec![vec![Some(short)]], 2), "10 values");
    let mut two = gray_cell(1);
    two.channels = 2;
    bad(ImageGrid::new(vec![vec![Some(two)]], 2), "2 channels");
    let mut g = ImageGrid::new(vec![vec![ok(), ok()]], 2);
    g.col_labels = vec!["only one".into()];
    bad(g, "1 column labels for 2 columns");
    bad(ImageGrid::new(vec![vec![ok()]], 100_000), "16384");
}

#[test]
fn text_clips_at_every_border_without_panicking() {
    assert_eq!(text_width("", 1), 0);
    assert_eq!(text_width("abc", 2), 48);
    assert_eq!(text_width("γ²?", 1), 24);
    assert_eq!(text_width(&"x".repeat(10), u32::MAX), u32::MAX);
    let black = Rgb([0, 0, 0]);
    let mut img = RgbImage::from_pixel(40, 20, Rgb([255, 255, 255]));
    for (x, y) in [
        (-5, -3),
        (35, 15),
        (i32::MIN, 0),
        (0, i32::MIN),
        (i32::MAX, i32::MAX),
        (i32::MIN, i32::MAX),
        (-100_000, 5),
    ] {
        draw_text(&mut img, x, y, "Hello, γ ☃\n", black, 1);
        draw_text(&mut img, x, y, "W", black, 1000);
    }
    draw_text(&mut img, 0, 0, "big", black, u32::MAX);
    // Partially visible text did draw: "Hello" starting at (-5, -3) leaves ink at the top left.
    let mut img = RgbImage::from_pixel(40, 20, Rgb([255, 255, 255]));
    draw_text(&mut img, -5, -3, "Hello", black, 1);
    assert!(img.pixels().any(|p| p.0 == [0, 0, 0]));
    let mut empty = RgbImage::new(0, 0);
    draw_text(&mut empty, 0, 0, "x", black, 1);
}

#[test]
fn save_png_round_trips_exactly() {
    let dir = scratch("round-trip");
    let img = sine_plot(3).render().unwrap();
    let path = dir.join("plot.png");
    save_png(&path, &img).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
    assert_eq!(back.dimensions(), img.dimensions());
    assert!(back.as_raw() == img.as_raw(), "decoded pixels differ");
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["plot.png"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn saving_into_a_missing_directory_names_the_path_and_leaves_no_file() {
    let dir = scratch("missing");
    let path = dir.join("no-such-dir").join("plot.png");
    let img = RgbImage::from_pixel(4, 4, Rgb([1, 2, 3]));
    let e = save_png(&path, &img).unwrap_err();
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

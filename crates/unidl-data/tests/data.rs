//! Data layer: parsing (including corrupt files), transforms and label sync,
//! seeds, datasets, samplers (restore), loader worker invariance, operators.

use std::path::{Path, PathBuf};

use unidl_backend::Device;
use unidl_data::parse::{load_image, read_csv, read_json, read_jsonl, read_xml, save_png};
use unidl_data::transform::{
    HorizontalFlip, Registry, Resize, Transform, pipeline_from_toml, rng_for,
};
use unidl_data::*;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("unidl-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A `w × h` RGB image whose pixel (x, y) encodes its coordinates.
fn coord_image(w: usize, h: usize) -> Image {
    let mut img = Image::new(w, h, 3);
    for y in 0..h {
        for x in 0..w {
            img.set(x, y, 0, x as f32 / w as f32);
            img.set(x, y, 1, y as f32 / h as f32);
            img.set(x, y, 2, 0.5);
        }
    }
    img
}

fn sample_with_targets() -> Sample {
    let mut s = Sample::image(coord_image(40, 20), Some(3), "synthetic");
    s.targets.boxes.push(BBox {
        x0: 4.0,
        y0: 2.0,
        x1: 10.0,
        y1: 8.0,
        class: 1,
    });
    s.targets.keypoints = vec![
        Keypoint {
            x: 5.5,
            y: 4.5,
            visibility: 2,
        },
        Keypoint {
            x: 30.5,
            y: 10.5,
            visibility: 2,
        },
    ];
    let mut m = Mask {
        width: 40,
        height: 20,
        data: vec![0; 800],
        class: 1,
    };
    for y in 2..8 {
        for x in 4..10 {
            m.data[y * 40 + x] = 1;
        }
    }
    s.targets.masks.push(m);
    s
}

// ----- parsing (P-a, P-b, P-e) -----

#[test]
fn images_decode_from_png_jpg_bmp_and_corrupt_files_name_the_path() {
    let d = tmp("img");
    let img = coord_image(8, 6);
    save_png(&img, &d.join("a.png")).unwrap();
    let back = load_image(&d.join("a.png"), None).unwrap();
    assert_eq!((back.width, back.height, back.channels), (8, 6, 3));
    assert!((back.get(7, 5, 0) - img.get(7, 5, 0)).abs() < 1.0 / 255.0 + 1e-6);
    let rgb = image::RgbImage::from_fn(8, 6, |x, y| {
        image::Rgb([(x * 30) as u8, (y * 40) as u8, 128])
    });
    rgb.save(d.join("b.jpg")).unwrap();
    rgb.save(d.join("c.bmp")).unwrap();
    assert_eq!(load_image(&d.join("b.jpg"), None).unwrap().width, 8);
    assert_eq!(load_image(&d.join("c.bmp"), Some(1)).unwrap().channels, 1);
    // corrupt: truncated PNG, random bytes, empty, missing
    let bytes = std::fs::read(d.join("a.png")).unwrap();
    std::fs::write(d.join("trunc.png"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(d.join("noise.jpg"), b"definitely not a jpeg").unwrap();
    std::fs::write(d.join("empty.png"), b"").unwrap();
    for f in ["trunc.png", "noise.jpg", "empty.png"] {
        let e = load_image(&d.join(f), None).unwrap_err();
        assert!(matches!(e, DataError::Corrupt { .. }), "{f}: {e}");
        assert!(e.to_string().contains(f), "{e}");
    }
    assert!(matches!(
        load_image(&d.join("missing.png"), None),
        Err(DataError::NotFound { .. })
    ));
}

/// An 8-bit RLE BMP of `w` × `h` pixels whose pixel data is one
/// end-of-bitmap code: a valid file of a few dozen bytes.
fn rle_bmp(w: i32, h: i32) -> Vec<u8> {
    let palette = [0u8, 0, 0, 0, 255, 255, 255, 0];
    let pixels = [0u8, 1];
    let offset = 14 + 40 + palette.len() as u32;
    let mut b = b"BM".to_vec();
    b.extend_from_slice(&(offset + pixels.len() as u32).to_le_bytes());
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(&offset.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&w.to_le_bytes());
    b.extend_from_slice(&h.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&8u16.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes()); // BI_RLE8
    b.extend_from_slice(&(pixels.len() as u32).to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&palette);
    b.extend_from_slice(&pixels);
    b
}

/// Found by the fuzzer (issue 13): a 421-byte RLE BMP declaring 516 × 62210
/// pixels decoded (legally: RLE may end early) to 32 million pixels, 384 MiB
/// as f32. A size the file cannot justify is refused from the header.
#[test]
fn an_image_declaring_more_pixels_than_its_bytes_justify_is_refused_before_decoding() {
    let big = rle_bmp(516, 62210);
    let e = unidl_data::parse::decode_image(&big, None).unwrap_err();
    assert!(e.contains("516×62210"), "{e}");
    // The same file at a size within the budget decodes.
    let small = rle_bmp(64, 48);
    let img = unidl_data::parse::decode_image(&small, None).unwrap();
    assert_eq!((img.width, img.height), (64, 48));
}

#[test]
fn text_formats_parse_and_errors_name_file_and_line() {
    let d = tmp("text");
    std::fs::write(d.join("a.json"), r#"{"x": [1, 2]}"#).unwrap();
    assert_eq!(read_json(&d.join("a.json")).unwrap()["x"][1], 2);
    std::fs::write(d.join("b.jsonl"), "{\"a\":1}\n\n{\"a\":2}\n{broken\n").unwrap();
    let e = read_jsonl(&d.join("b.jsonl")).unwrap_err();
    assert!(e.to_string().contains("b.jsonl:4"), "{e}");
    std::fs::write(d.join("c.csv"), "path,label\nx.png,1\ny.png,0\n").unwrap();
    let rows = read_csv(&d.join("c.csv")).unwrap();
    assert_eq!(rows[1]["path"], "y.png");
    #[derive(serde::Deserialize)]
    struct Ann {
        filename: String,
        object: Vec<Obj>,
    }
    #[derive(serde::Deserialize)]
    struct Obj {
        name: String,
    }
    std::fs::write(d.join("d.xml"), "<annotation><filename>p.jpg</filename><object><name>cat</name></object><object><name>dog</name></object></annotation>").unwrap();
    let a: Ann = read_xml(&d.join("d.xml")).unwrap();
    assert_eq!(
        (a.filename.as_str(), a.object[1].name.as_str()),
        ("p.jpg", "dog")
    );
    std::fs::write(d.join("e.xml"), "<annotation><filename>p.jpg</annotation>").unwrap();
    assert!(matches!(
        read_xml::<Ann>(&d.join("e.xml")),
        Err(DataError::Parse { .. })
    ));
    std::fs::write(d.join("f.txt"), [0xff, 0xfe, 0x00]).unwrap();
    assert!(matches!(
        parse::read_text(&d.join("f.txt")),
        Err(DataError::Corrupt { .. })
    ));
}

// ----- transforms (A-a, A-b) -----

#[test]
fn horizontal_flip_moves_boxes_masks_and_swaps_keypoint_pairs() {
    let s = sample_with_targets();
    let f = HorizontalFlip {
        flip_pairs: vec![[0, 1]],
    };
    let out = f.apply(s.clone(), &mut rng_for(0, 0, 0)).unwrap();
    let b = out.targets.boxes[0];
    assert_eq!((b.x0, b.x1, b.y0, b.y1), (30.0, 36.0, 2.0, 8.0));
    // keypoints mirrored (x -> 40 - x) and swapped
    assert_eq!(
        (out.targets.keypoints[0].x, out.targets.keypoints[1].x),
        (40.0 - 30.5, 40.0 - 5.5)
    );
    let m = &out.targets.masks[0];
    assert_eq!(m.data[5 * 40 + 30], 1);
    assert_eq!(m.data[5 * 40 + 5], 0);
    // the pixel under the box moved with it
    let img = out.image_input("image").unwrap();
    assert!((img.get(35, 5, 0) - s.image_input("image").unwrap().get(4, 5, 0)).abs() < 1e-6);
    // flipping twice is the identity
    let twice = f.apply(out, &mut rng_for(0, 0, 0)).unwrap();
    assert_eq!(twice.image_input("image"), s.image_input("image"));
    assert_eq!(twice.targets.boxes, s.targets.boxes);
}

#[test]
fn letterbox_resize_scales_and_offsets_targets() {
    let s = sample_with_targets();
    let r = Resize {
        size: [32, 32],
        keep_ratio: true,
        fill: 0.0,
    };
    let out = r.apply(s, &mut rng_for(0, 0, 0)).unwrap();
    let img = out.image_input("image").unwrap();
    assert_eq!((img.width, img.height), (32, 32));
    // 40x20 -> 32x16, centred vertically: offset 8
    let b = out.targets.boxes[0];
    assert!(
        (b.x0 - 3.2).abs() < 1e-5 && (b.y0 - (1.6 + 8.0)).abs() < 1e-5,
        "{b:?}"
    );
    assert_eq!(img.get(10, 2, 2), 0.0, "padding is filled");
    assert!((img.get(10, 16, 2) - 0.5).abs() < 1e-6);
    let m = &out.targets.masks[0];
    assert_eq!((m.width, m.height), (32, 32));
    let cx = ((b.x0 + b.x1) / 2.0) as usize;
    let cy = ((b.y0 + b.y1) / 2.0) as usize;
    assert_eq!(m.data[cy * 32 + cx], 1, "mask still under the box");
}

#[test]
fn random_resized_crop_keeps_targets_on_the_pixels() {
    let cfg =
        "[[transforms]]\ntype = \"random_resized_crop\"\nsize = [16, 16]\nscale = [0.3, 1.0]\n";
    let p = pipeline_from_toml(cfg, &Registry::new()).unwrap();
    let mut seen = 0;
    for i in 0..20 {
        let s = sample_with_targets();
        let out = p.apply(s, &mut rng_for(1, 0, i)).unwrap();
        let img = out.image_input("image").unwrap();
        assert_eq!((img.width, img.height), (16, 16));
        for (k, src) in out.targets.keypoints.iter().zip([(5.0, 4.0), (30.0, 10.0)]) {
            if k.visibility > 0 {
                // the pixel under the moved keypoint still shows the source pixel
                // the keypoint was on (red encodes x / 40, green y / 20)
                seen += 1;
                let (x, y) = (k.x as usize, k.y as usize);
                let red = img.get(x.min(15), y.min(15), 0) * 40.0;
                let green = img.get(x.min(15), y.min(15), 1) * 20.0;
                assert!(
                    (red - src.0).abs() <= 1.5 && (green - src.1).abs() <= 1.5,
                    "keypoint at ({}, {}) shows source pixel ({red}, {green}), expected {src:?}",
                    k.x,
                    k.y
                );
            }
        }
        for b in &out.targets.boxes {
            assert!(b.x0 >= 0.0 && b.x1 <= 16.0 && b.y0 >= 0.0 && b.y1 <= 16.0);
        }
    }
    assert!(seen >= 10, "only {seen} keypoints stayed inside the crops");
}

#[test]
fn rotation_turns_pixels_boxes_masks_and_keypoints_together() {
    // a 20x20 image whose pixels encode their coordinates
    let mut s = Sample::image(coord_image(20, 20), None, "square");
    s.targets.boxes.push(BBox {
        x0: 4.0,
        y0: 1.0,
        x1: 8.0,
        y1: 3.0,
        class: 0,
    });
    s.targets.keypoints.push(Keypoint {
        x: 5.5,
        y: 2.5,
        visibility: 2,
    });
    let mut m = Mask {
        width: 20,
        height: 20,
        data: vec![0; 400],
        class: 0,
    };
    for y in 1..3 {
        for x in 4..8 {
            m.data[y * 20 + x] = 1;
        }
    }
    s.targets.masks.push(m);
    let quarter = pipeline_from_toml(
        "[[transforms]]\ntype = \"random_rotation\"\ndegrees = [90.0, 90.0]\n",
        &Registry::new(),
    )
    .unwrap();
    let out = quarter.apply(s.clone(), &mut rng_for(0, 0, 0)).unwrap();
    // y points down: (x, y) -> (20 - y, x) for a quarter turn about the centre
    let k = out.targets.keypoints[0];
    assert!(
        (k.x - 17.5).abs() < 1e-4 && (k.y - 5.5).abs() < 1e-4,
        "{k:?}"
    );
    let b = out.targets.boxes[0];
    assert!(
        (b.x0 - 17.0).abs() < 1e-4
            && (b.x1 - 19.0).abs() < 1e-4
            && (b.y0 - 4.0).abs() < 1e-4
            && (b.y1 - 8.0).abs() < 1e-4,
        "{b:?}"
    );
    let img = out.image_input("image").unwrap();
    assert!(
        (img.get(17, 5, 0) * 20.0 - 5.0).abs() < 1e-3
            && (img.get(17, 5, 1) * 20.0 - 2.0).abs() < 1e-3,
        "the keypoint's source pixel moved with it"
    );
    let mask = &out.targets.masks[0];
    assert_eq!(mask.data.iter().filter(|&&v| v == 1).count(), 8);
    assert_eq!(mask.data[5 * 20 + 17], 1);
    // four quarter turns give the image back
    let mut back = out;
    for _ in 0..3 {
        back = quarter.apply(back, &mut rng_for(0, 0, 0)).unwrap();
    }
    let (a, o) = (
        back.image_input("image").unwrap(),
        s.image_input("image").unwrap(),
    );
    assert!(
        a.data
            .iter()
            .zip(&o.data)
            .all(|(x, y)| (x - y).abs() < 1e-4)
    );
    let (b1, b0) = (back.targets.boxes[0], s.targets.boxes[0]);
    assert!(
        [b1.x0 - b0.x0, b1.y0 - b0.y0, b1.x1 - b0.x1, b1.y1 - b0.y1]
            .iter()
            .all(|d| d.abs() < 1e-4),
        "{b1:?}"
    );
    let e = pipeline_from_toml(
        "[[transforms]]\ntype = \"random_affine\"\nscale = [0.0, 1.0]\n",
        &Registry::new(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("random_affine"), "{e}");
}

#[test]
fn photometric_transforms_have_their_effect() {
    let toml = r#"
[[transforms]]
type = "grayscale"
channels = 1
[[transforms]]
type = "normalize"
mean = [0.5]
std = [0.25]
"#;
    let p = pipeline_from_toml(toml, &Registry::new()).unwrap();
    let out = p
        .apply(
            Sample::image(coord_image(4, 4), None, "x"),
            &mut rng_for(0, 0, 0),
        )
        .unwrap();
    let img = out.image_input("image").unwrap();
    assert_eq!(img.channels, 1);
    let g = 0.2989 * 0.75 + 0.587 * 0.25 + 0.114 * 0.5;
    assert!((img.get(3, 1, 0) - (g - 0.5) / 0.25).abs() < 1e-5);
    // brightness-only jitter scales every pixel by one factor in [0.5, 1.5]
    let j = pipeline_from_toml(
        "[[transforms]]\ntype = \"color_jitter\"\nbrightness = 0.5\n",
        &Registry::new(),
    )
    .unwrap();
    let src = coord_image(4, 4);
    let out = j
        .apply(Sample::image(src.clone(), None, "x"), &mut rng_for(0, 0, 3))
        .unwrap();
    let o = out.image_input("image").unwrap();
    let factor = o.get(2, 0, 2) / src.get(2, 0, 2);
    assert!((0.5..=1.5).contains(&factor) && (factor - 1.0).abs() > 1e-4);
}

/// Reads `tests/reference/color_jitter.json` (`gen_color_jitter.py`).
fn color_reference() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/color_jitter.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn json_floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Largest difference between `got` and torchvision's `want`.
fn max_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f32::max)
}

/// The deterministic colour functions against torchvision 0.24's
/// `adjust_brightness`, `adjust_contrast`, `adjust_saturation`, `adjust_hue`
/// and `rgb_to_grayscale` on float images (RGB and one-channel), factors 0 to
/// 2. Brightness, contrast, saturation and grayscale use torchvision's f32
/// arithmetic step by step, so they agree to 1e-6 (contrast's image mean may
/// round differently in its last bit); hue to 1e-5.
#[test]
fn color_functions_match_torchvision() {
    use unidl_data::transform::{
        Grayscale, adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation,
    };
    let r = color_reference();
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    type Adjust = fn(&mut Image, f32);
    let functions: [(&str, Adjust, f32); 4] = [
        ("brightness", adjust_brightness, 1e-6),
        ("contrast", adjust_contrast, 1e-6),
        ("saturation", adjust_saturation, 1e-6),
        ("hue", adjust_hue, 1e-5),
    ];
    let mut checked = 0;
    for case in cases {
        let n = |k: &str| case[k].as_u64().unwrap() as usize;
        let src = Image {
            width: n("width"),
            height: n("height"),
            channels: n("channels"),
            data: json_floats(&case["image"]),
        };
        for (name, f, tol) in functions {
            let Some(runs) = case[name].as_array() else {
                continue;
            };
            for run in runs {
                let factor = run["factor"].as_f64().unwrap() as f32;
                let mut img = src.clone();
                f(&mut img, factor);
                let d = max_diff(&img.data, &json_floats(&run["data"]));
                assert!(
                    d <= tol,
                    "{name} {factor} on {} channel(s): max difference {d} from torchvision",
                    src.channels
                );
                checked += 1;
            }
        }
        if let Some(want) = case.get("grayscale") {
            let out = Grayscale { channels: 1 }
                .apply(
                    Sample::image(src.clone(), None, "gray"),
                    &mut rng_for(0, 0, 0),
                )
                .unwrap();
            let d = max_diff(&out.image_input("image").unwrap().data, &json_floats(want));
            assert!(d <= 1e-6, "grayscale: max difference {d} from torchvision");
            checked += 1;
        }
    }
    // 7 factors × 3 functions × 2 images, 5 hues and the grayscale of the RGB one
    assert_eq!(checked, 7 * 3 * 2 + 5 + 1);

    // color_jitter applies these functions with the factors it draws: with
    // one strength set, its output is that function at the drawn factor
    let src = Image {
        width: 5,
        height: 4,
        channels: 3,
        data: json_floats(&cases[0]["image"]),
    };
    let x = 0.9f32;
    for (key, f) in [
        ("brightness", adjust_brightness as Adjust),
        ("contrast", adjust_contrast),
        ("saturation", adjust_saturation),
    ] {
        let p = pipeline_from_toml(
            &format!("[[transforms]]\ntype = \"color_jitter\"\n{key} = {x}\n"),
            &Registry::new(),
        )
        .unwrap();
        let out = p
            .apply(Sample::image(src.clone(), None, "x"), &mut rng_for(4, 0, 0))
            .unwrap();
        let factor: f32 =
            rand::Rng::random_range(&mut rng_for(4, 0, 0), (1.0 - x).max(0.0)..=1.0 + x);
        let mut want = src.clone();
        f(&mut want, factor);
        assert_eq!(out.image_input("image").unwrap(), &want, "{key} {factor}");
        assert_ne!(
            want.data, src.data,
            "{key}: the drawn factor changed nothing"
        );
    }
}

#[test]
fn pipelines_from_toml_reject_unknown_keys_and_bad_values() {
    let e = pipeline_from_toml(
        "[[transforms]]\ntype = \"random_horizontal_flip\"\nprob = 0.5\n",
        &Registry::new(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("prob") && e.to_string().contains("<pipeline>:"),
        "{e}"
    );
    let e =
        pipeline_from_toml("[[transforms]]\ntype = \"no_such\"\n", &Registry::new()).unwrap_err();
    assert!(e.to_string().contains("no_such"), "{e}");
    let e = pipeline_from_toml(
        "[[transforms]]\ntype = \"random_horizontal_flip\"\np = 1.5\n",
        &Registry::new(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("random_horizontal_flip.p"), "{e}");
    let e = pipeline_from_toml(
        "[[transforms]]\ntype = \"normalize\"\nmean = [0.1, 0.2]\nstd = [1.0]\n",
        &Registry::new(),
    )
    .unwrap_err();
    assert!(matches!(e, DataError::Config { .. }), "{e}");
}

#[derive(Debug)]
struct Invert;
impl Transform for Invert {
    fn name(&self) -> &str {
        "invert"
    }
    fn apply(&self, mut s: Sample, _rng: &mut transform::Rng) -> unidl_data::Result<Sample> {
        if let Some(Input::Image(img)) = s.inputs.get_mut("image") {
            img.data.iter_mut().for_each(|v| *v = 1.0 - *v);
        }
        Ok(s)
    }
}

#[test]
fn user_transforms_register_by_name_and_combinators_are_seeded() {
    let mut reg = Registry::new();
    reg.register("invert", |_params| Ok(std::sync::Arc::new(Invert)));
    let toml = r#"
[[transforms]]
type = "random_choice"
weights = [1.0, 3.0]
transforms = [{ type = "custom", name = "invert" }, { type = "random_vertical_flip", p = 1.0 }]
[[transforms]]
type = "random_order"
transforms = [{ type = "random_horizontal_flip", p = 0.5 }, { type = "random_apply", p = 0.5, transforms = [{ type = "custom", name = "invert" }] }]
"#;
    let p = pipeline_from_toml(toml, &reg).unwrap();
    let src = Sample::image(coord_image(6, 4), Some(0), "x");
    let mut distinct = std::collections::BTreeSet::new();
    for i in 0..40 {
        let a = p.apply(src.clone(), &mut rng_for(9, 0, i)).unwrap();
        let b = p.apply(src.clone(), &mut rng_for(9, 0, i)).unwrap();
        assert_eq!(a, b, "same seed, same output");
        distinct.insert(format!("{:?}", a.image_input("image").unwrap().data));
    }
    assert!(
        distinct.len() >= 4,
        "the random combinators produced only {} variants",
        distinct.len()
    );
    assert!(
        pipeline_from_toml("[[transforms]]\ntype = \"custom\"\nname = \"nope\"\n", &reg).is_err()
    );
}

// ----- data sets (B.1) -----

fn image_folder(name: &str, per_class: usize) -> PathBuf {
    let d = tmp(name);
    for (c, class) in ["cat", "dog", "eel"].iter().enumerate() {
        std::fs::create_dir_all(d.join(class)).unwrap();
        for i in 0..per_class {
            let mut img = Image::new(6, 5, 1);
            img.data
                .iter_mut()
                .for_each(|v| *v = (c * 10 + i) as f32 / 40.0);
            save_png(&img, &d.join(class).join(format!("{i:03}.png"))).unwrap();
        }
    }
    d
}

#[test]
fn image_folder_dataset_loads_lazily_and_names_missing_files() {
    let d = image_folder("folder", 4);
    let ds = construct_dataset(&d, &DatasetParams::default()).unwrap();
    assert_eq!(ds.len(), 12);
    assert_eq!(ds.classes(), ["cat", "dog", "eel"]);
    let s = get_sample(&ds, 5).unwrap();
    assert_eq!(s.targets.label, Some(1));
    assert!((s.image_input("image").unwrap().data[0] - 11.0 / 40.0).abs() < 1.0 / 255.0);
    assert!(matches!(
        get_sample(&ds, 12),
        Err(DataError::OutOfRange { index: 12, len: 12 })
    ));
    std::fs::remove_file(d.join("eel/002.png")).unwrap();
    let e = get_sample(&ds, 10).unwrap_err();
    assert!(
        matches!(e, DataError::NotFound { .. }) && e.to_string().contains("eel/002.png"),
        "{e}"
    );
    assert!(get_sample(&ds, 9).is_ok(), "other samples still load");
    let e = construct_dataset(Path::new("/no/such/dir"), &DatasetParams::default()).unwrap_err();
    assert!(matches!(e, DataError::NotFound { .. }));
    let part = construct_dataset(
        &d,
        &DatasetParams {
            range: Some([2, 6]),
            ..DatasetParams::default()
        },
    )
    .unwrap();
    assert_eq!(part.len(), 4);
    let (a, b) = ds.split(0.75, 1).unwrap();
    assert_eq!((a.len(), b.len()), (9, 3));
}

#[test]
fn manifests_resolve_paths_and_class_names() {
    let d = image_folder("manifest", 2);
    std::fs::write(
        d.join("m.csv"),
        "path,label\ncat/000.png,cat\ndog/001.png,dog\n",
    )
    .unwrap();
    let ds = construct_dataset(&d.join("m.csv"), &DatasetParams::default()).unwrap();
    assert_eq!(ds.classes(), ["cat", "dog"]);
    assert_eq!(get_sample(&ds, 1).unwrap().targets.label, Some(1));
    std::fs::write(
        d.join("m.jsonl"),
        "{\"path\": \"eel/000.png\", \"label\": 2}\n{\"path\": \"cat/001.png\"}\n",
    )
    .unwrap();
    let e = construct_dataset(&d.join("m.jsonl"), &DatasetParams::default()).unwrap_err();
    assert!(
        e.to_string().contains("m.jsonl:2") && e.to_string().contains("label"),
        "{e}"
    );
}

// ----- samplers (B.2) -----

#[test]
fn sampler_batches_repeat_drop_last_and_shard() {
    let mut s = Sampler::new(
        SamplerConfig {
            drop_last_batch: true,
            ..SamplerConfig::new(4)
        },
        10,
    )
    .unwrap();
    let sizes: Vec<usize> = std::iter::from_fn(|| s.next_batch())
        .map(|b| b.len())
        .collect();
    assert_eq!(sizes, [4, 4]);
    let mut s = Sampler::new(SamplerConfig::new(4), 10).unwrap();
    let sizes: Vec<usize> = std::iter::from_fn(|| s.next_batch())
        .map(|b| b.len())
        .collect();
    assert_eq!(sizes, [4, 4, 2]);
    let mut s = Sampler::new(
        SamplerConfig {
            repeat: true,
            shuffle: true,
            seed: 3,
            ..SamplerConfig::new(5)
        },
        10,
    )
    .unwrap();
    let e0: Vec<usize> = (0..2)
        .flat_map(|_| s.next_batch().unwrap())
        .map(|(_, i)| i)
        .collect();
    let e1: Vec<(u64, usize)> = (0..2).flat_map(|_| s.next_batch().unwrap()).collect();
    let mut sorted = e0.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        (0..10).collect::<Vec<_>>(),
        "an epoch visits every sample once"
    );
    assert!(e1.iter().all(|(e, _)| *e == 1));
    assert_ne!(
        e0,
        e1.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
        "epochs are shuffled differently"
    );
    // shards are equal in size (ranks step together), cover the set, and
    // overlap only in the padding: the permutation's first samples again
    let mut all = Vec::new();
    let mut perm = Sampler::new(
        SamplerConfig {
            shuffle: true,
            ..SamplerConfig::new(2)
        },
        10,
    )
    .unwrap();
    let perm: Vec<usize> = std::iter::from_fn(|| perm.next_index())
        .map(|(_, i)| i)
        .collect();
    for rank in 0..3 {
        let mut s = Sampler::new(
            SamplerConfig {
                rank,
                world_size: 3,
                shuffle: true,
                ..SamplerConfig::new(2)
            },
            10,
        )
        .unwrap();
        let shard: Vec<usize> = std::iter::from_fn(|| s.next_index())
            .map(|(_, i)| i)
            .collect();
        assert_eq!(shard.len(), 4, "rank {rank}: 10 samples padded to 12");
        assert_eq!(s.batches_per_epoch(), 2);
        // strided: rank r holds positions r, r + 3, … of the one permutation
        for (k, &i) in shard.iter().enumerate() {
            assert_eq!(i, perm[(rank + 3 * k) % 10], "rank {rank}");
        }
        all.extend(shard);
    }
    all.sort();
    let mut expected: Vec<usize> = (0..10).chain(perm[..2].iter().copied()).collect();
    expected.sort();
    assert_eq!(all, expected);
    assert!(Sampler::new(SamplerConfig::new(0), 10).is_err());
    assert!(
        Sampler::new(
            SamplerConfig {
                rank: 2,
                world_size: 2,
                ..SamplerConfig::new(1)
            },
            10
        )
        .is_err()
    );
}

/// More ranks than samples: a rank would get an empty shard (an index into
/// nothing, or empty batches forever with `repeat`) — refused, naming the key.
#[test]
fn more_ranks_than_samples_is_a_config_error() {
    for repeat in [false, true] {
        let e = Sampler::new(
            SamplerConfig {
                rank: 2,
                world_size: 4,
                repeat,
                ..SamplerConfig::new(2)
            },
            3,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("world_size") && e.contains("3 samples"), "{e}");
    }
    // as many ranks as samples: one sample each, every epoch
    let mut s = Sampler::new(
        SamplerConfig {
            rank: 2,
            world_size: 3,
            repeat: true,
            ..SamplerConfig::new(2)
        },
        3,
    )
    .unwrap();
    for _ in 0..3 {
        assert_eq!(s.next_batch().unwrap().len(), 1);
    }
}

#[test]
fn restored_sampler_continues_at_exactly_the_next_batch() {
    let cfg = SamplerConfig {
        repeat: true,
        shuffle: true,
        seed: 11,
        ..SamplerConfig::new(3)
    };
    let mut a = Sampler::new(cfg.clone(), 10).unwrap();
    let full: Vec<_> = (0..9).map(|_| a.next_batch().unwrap()).collect();
    let mut b = Sampler::new(cfg.clone(), 10).unwrap();
    for _ in 0..5 {
        b.next_batch();
    }
    let state = b.state();
    let saved = serde_json::to_string(&state).unwrap();
    let mut c = Sampler::new(cfg, 10).unwrap();
    c.restore(serde_json::from_str(&saved).unwrap()).unwrap();
    let rest: Vec<_> = (0..4).map(|_| c.next_batch().unwrap()).collect();
    assert_eq!(rest, full[5..]);
}

/// Length-grouped batching: every sample once per epoch; within a group of
/// `LENGTH_GROUP_BATCHES` batches the batches hold neighbours in length, so
/// far less of a batch is padding than with plain shuffling; the order
/// still changes between epochs; a resumed sampler continues exactly; a
/// data set without lengths is a config error naming the key.
#[test]
fn length_grouped_batches_hold_samples_of_similar_length() {
    let n = 1000;
    let lengths: Vec<usize> = (0..n).map(|i| (i * 7919) % 251 + 1).collect();
    let cfg = SamplerConfig {
        shuffle: true,
        repeat: true,
        seed: 4,
        group_by_length: true,
        ..SamplerConfig::new(8)
    };
    let mut s = Sampler::with_lengths(cfg.clone(), lengths.clone()).unwrap();
    assert_eq!(s.batches_per_epoch(), 125);
    let epoch = |s: &mut Sampler| -> Vec<Vec<usize>> {
        (0..125)
            .map(|_| {
                s.next_batch()
                    .unwrap()
                    .into_iter()
                    .map(|(_, i)| i)
                    .collect()
            })
            .collect()
    };
    let e0 = epoch(&mut s);
    let mut seen: Vec<usize> = e0.iter().flatten().copied().collect();
    seen.sort();
    assert_eq!(seen, (0..n).collect::<Vec<_>>());
    // padding: sum over batches of (max length * size - sum of lengths)
    let padding = |batches: &[Vec<usize>]| -> usize {
        batches
            .iter()
            .map(|b| {
                let m = b.iter().map(|&i| lengths[i]).max().unwrap();
                b.iter().map(|&i| m - lengths[i]).sum::<usize>()
            })
            .sum()
    };
    let mut plain = Sampler::new(
        SamplerConfig {
            group_by_length: false,
            ..cfg.clone()
        },
        n,
    )
    .unwrap();
    let p0 = epoch(&mut plain);
    assert!(
        padding(&e0) * 10 < padding(&p0),
        "grouped {} vs shuffled {}",
        padding(&e0),
        padding(&p0)
    );
    let e1 = epoch(&mut s);
    assert_ne!(e0, e1, "a new epoch, a new order");
    // resuming mid-epoch continues at exactly the next batch
    let mut b = Sampler::with_lengths(cfg.clone(), lengths.clone()).unwrap();
    for _ in 0..130 {
        b.next_batch();
    }
    let mut c = Sampler::with_lengths(cfg.clone(), lengths.clone()).unwrap();
    c.restore(b.state()).unwrap();
    let next: Vec<usize> = c
        .next_batch()
        .unwrap()
        .into_iter()
        .map(|(_, i)| i)
        .collect();
    assert_eq!(next, e1[5]);
    // without lengths: a config error naming the key
    let e = Sampler::new(cfg.clone(), n).unwrap_err().to_string();
    assert!(e.contains("group_by_length"), "{e}");
    let ds = construct_dataset(&image_folder("nolengths", 2), &DatasetParams::default()).unwrap();
    let e = construct_sampler(&cfg, &ds).unwrap_err().to_string();
    assert!(
        e.contains("group_by_length") && e.contains("lengths"),
        "{e}"
    );
}

#[test]
fn iterate_sample_and_batch_follow_the_sampler() {
    let d = image_folder("iter", 3);
    let ds = construct_dataset(&d, &DatasetParams::default()).unwrap();
    let mut s = construct_sampler(&SamplerConfig::new(4), &ds).unwrap();
    let labels: Vec<usize> = iterate_sample(&ds, Some(&mut s))
        .map(|r| r.unwrap().targets.label.unwrap())
        .collect();
    assert_eq!(labels, [0, 0, 0, 1, 1, 1, 2, 2, 2]);
    let mut s = construct_sampler(&SamplerConfig::new(4), &ds).unwrap();
    let sizes: Vec<usize> = iterate_batch(&ds, &mut s)
        .map(|b| b.unwrap().len())
        .collect();
    assert_eq!(sizes, [4, 4, 1]);
}

// ----- loader -----

#[test]
fn loader_output_is_identical_for_any_worker_count() {
    let d = image_folder("loader", 5);
    let params = DatasetParams {
        transforms: vec![
            TransformConfig::RandomResizedCrop {
                size: [4, 4],
                scale: [0.5, 1.0],
                ratio: [0.75, 1.33],
            },
            TransformConfig::RandomHorizontalFlip {
                p: 0.5,
                flip_pairs: vec![],
            },
        ],
        seed: 5,
        ..DatasetParams::default()
    };
    let ds = construct_dataset(&d, &params).unwrap();
    let run = |workers: usize| -> Vec<(Vec<f32>, Vec<i64>)> {
        let sampler = Sampler::new(
            SamplerConfig {
                shuffle: true,
                seed: 2,
                ..SamplerConfig::new(4)
            },
            ds.len(),
        )
        .unwrap();
        DataLoader::new(
            ds.clone(),
            sampler,
            LoaderConfig {
                workers,
                prefetch: 2,
            },
        )
        .unwrap()
        .map(|b| {
            let b = collate_images(&b.unwrap().samples, &Device::flex()).unwrap();
            assert_eq!(&b.images.shape()[1..], &[1, 4, 4]);
            (
                b.images.to_vec_f32().unwrap(),
                b.labels.unwrap().to_vec_i64().unwrap(),
            )
        })
        .collect()
    };
    let one = run(1);
    assert_eq!(one.len(), 4);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

#[test]
fn collation_pads_tokens_and_rejects_mixed_sizes() {
    let (ids, mask) = collate_tokens(&[vec![5, 6, 7], vec![8]], 0, &Device::flex()).unwrap();
    assert_eq!(ids.to_vec_i64().unwrap(), [5, 6, 7, 8, 0, 0]);
    assert_eq!(
        mask.to_vec_bool().unwrap(),
        [true, true, true, true, false, false]
    );
    let a = Sample::image(Image::new(4, 4, 1), Some(0), "a");
    let b = Sample::image(Image::new(5, 4, 1), Some(1), "b.png");
    let e = collate_images(&[a, b], &Device::flex()).unwrap_err();
    assert!(e.to_string().contains("b.png"), "{e}");
}

// ----- operators (B.7) -----

#[test]
fn operators_transform_inputs_and_targets_together() {
    let mut op = construct_operator(
        Some("[[transforms]]\ntype = \"random_horizontal_flip\"\np = 1.0\n"),
        0,
    )
    .unwrap();
    let s = sample_with_targets();
    let out = op
        .operate(OpData {
            inputs: s.inputs.clone(),
            targets: s.targets.clone(),
        })
        .unwrap();
    assert_eq!(out.targets.boxes[0].x0, 30.0);
    let mut id = construct_operator(None, 0).unwrap();
    let same = id
        .operate(OpData {
            inputs: s.inputs.clone(),
            targets: s.targets.clone(),
        })
        .unwrap();
    assert_eq!(same.targets, s.targets);
    assert!(construct_operator(Some("[[transforms]]\ntype = \"resize\"\n"), 0).is_err());
    let mut bad = construct_operator(
        Some("[[transforms]]\ntype = \"center_crop\"\nsize = [2, 2]\n"),
        0,
    )
    .unwrap();
    let e = bad.operate(OpData::default()).unwrap_err();
    assert!(matches!(e, DataError::Transform { .. }), "{e}");
}

// ----- real data: the committed MNIST slice (`cargo xtask data mnist --per-class 70`) -----

#[test]
fn mnist_fixture_slice_is_real_digits() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mnist");
    let train = construct_dataset(&root.join("train"), &DatasetParams::default()).unwrap();
    let test = construct_dataset(&root.join("test"), &DatasetParams::default()).unwrap();
    assert_eq!((train.len(), test.len()), (560, 140));
    assert_eq!(
        train.classes(),
        (0..10).map(|d| d.to_string()).collect::<Vec<_>>()
    );
    let mut mean = 0.0;
    for i in (0..test.len()).step_by(7) {
        let s = get_sample(&test, i).unwrap();
        let img = s.image_input("image").unwrap();
        assert_eq!((img.width, img.height, img.channels), (28, 28, 1));
        mean += img.data.iter().sum::<f32>() / 784.0;
    }
    mean /= 20.0;
    // MNIST's mean intensity is about 0.13: mostly black with white strokes.
    assert!((0.08..0.2).contains(&mean), "mean intensity {mean}");
}

#[test]
fn mixup_and_cutmix_mix_labels_in_proportion() {
    use unidl_data::transform::{BatchTransform, CutMix, MixUp};
    let batch: Vec<Sample> = (0..4)
        .map(|i| {
            let mut img = Image::new(10, 10, 1);
            img.data.iter_mut().for_each(|v| *v = i as f32);
            Sample::image(img, Some(i), format!("s{i}"))
        })
        .collect();
    for seed in 0..5 {
        let out = MixUp {
            alpha: 0.4,
            num_classes: 4,
        }
        .apply_batch(batch.clone(), &mut rng_for(seed, 0, 0))
        .unwrap();
        for s in &out {
            let soft = s.targets.soft_label.as_ref().unwrap();
            assert!((soft.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            // every pixel is the label-weighted mix of the two source values (value i = label i)
            let expected: f32 = soft.iter().enumerate().map(|(c, w)| c as f32 * w).sum();
            let px = s.image_input("image").unwrap().data[0];
            assert!(
                (px - expected).abs() < 1e-4,
                "pixel {px} vs label mix {expected}"
            );
        }
        let out = CutMix {
            alpha: 1.0,
            num_classes: 4,
        }
        .apply_batch(batch.clone(), &mut rng_for(seed, 0, 1))
        .unwrap();
        for (s, orig) in out.iter().zip(&batch) {
            let soft = s.targets.soft_label.as_ref().unwrap();
            let own = orig.targets.label.unwrap();
            let img = s.image_input("image").unwrap();
            let kept = img.data.iter().filter(|v| **v == own as f32).count() as f32 / 100.0;
            // the soft label gives the own class exactly the fraction of its pixels kept
            assert!(
                (soft[own] - kept).abs() < 1e-5 && (soft.iter().sum::<f32>() - 1.0).abs() < 1e-5,
                "{soft:?} kept {kept}"
            );
        }
    }
    let mut unlabelled = batch.clone();
    unlabelled[2].targets.label = None;
    assert!(
        MixUp {
            alpha: 0.4,
            num_classes: 4
        }
        .apply_batch(unlabelled, &mut rng_for(0, 0, 0))
        .is_err()
    );
}

/// A clip of `n` one-pixel frames whose value is the frame's index.
fn counting_clip(n: usize) -> Sample {
    let frames = (0..n)
        .map(|i| Image {
            width: 1,
            height: 1,
            channels: 3,
            data: vec![i as f32; 3],
        })
        .collect();
    let mut s = Sample {
        source: "clip.mp4".into(),
        ..Sample::default()
    };
    s.inputs.insert("video".into(), Input::Video(frames, 8.0));
    s
}

fn frame_indices(s: &Sample) -> Vec<usize> {
    let Some(Input::Video(frames, _)) = s.inputs.get("video") else {
        panic!("no clip");
    };
    frames.iter().map(|f| f.data[0] as usize).collect()
}

/// Temporal crops keep consecutive frames: random windows cover every start
/// over many draws, the centred one is fixed; too short a clip, no clip or
/// zero frames are typed errors.
#[test]
fn temporal_crops_keep_consecutive_frames() {
    let random = pipeline_from_toml(
        "[[transforms]]\ntype = \"random_temporal_crop\"\nframes = 4\n",
        &Registry::new(),
    )
    .unwrap();
    let mut starts = std::collections::BTreeSet::new();
    for i in 0..64 {
        let out = random
            .apply(counting_clip(10), &mut rng_for(1, 0, i))
            .unwrap();
        let idx = frame_indices(&out);
        assert_eq!(idx.len(), 4);
        assert!(idx.windows(2).all(|w| w[1] == w[0] + 1), "{idx:?}");
        starts.insert(idx[0]);
    }
    assert_eq!(starts, (0..=6).collect(), "every start drawn");
    let center = pipeline_from_toml(
        "[[transforms]]\ntype = \"center_temporal_crop\"\nframes = 4\n",
        &Registry::new(),
    )
    .unwrap();
    let out = center
        .apply(counting_clip(10), &mut rng_for(0, 0, 0))
        .unwrap();
    assert_eq!(frame_indices(&out), [3, 4, 5, 6]);
    let e = center
        .apply(counting_clip(3), &mut rng_for(0, 0, 0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("clip.mp4") && e.contains("3 frames"), "{e}");
    let e = center
        .apply(
            Sample::image(coord_image(2, 2), None, "x.png"),
            &mut rng_for(0, 0, 0),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("no video"), "{e}");
    let e = pipeline_from_toml(
        "[[transforms]]\ntype = \"random_temporal_crop\"\nframes = 0\n",
        &Registry::new(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("random_temporal_crop.frames"), "{e}");
}

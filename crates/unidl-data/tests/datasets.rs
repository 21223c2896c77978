//! Data-set formats: COCO (masks checked exactly against pycocotools),
//! Pascal VOC, audio manifests, text classification, parallel text, video
//! folders (with the `ffmpeg` feature), format guessing and skip-with-report.

use std::path::{Path, PathBuf};

use unidl_data::dataset::coco_mask::Rle;
use unidl_data::dataset::{DatasetFormat, OnError, VOC_CLASSES, guess_format};
use unidl_data::*;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn reference(name: &str) -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/reference")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("unidl-datasets-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn params(format: DatasetFormat) -> DatasetParams {
    DatasetParams {
        format: Some(format),
        ..DatasetParams::default()
    }
}

fn text_input(s: &Sample) -> &str {
    match s.inputs.get("text") {
        Some(Input::Text(t)) => t,
        other => panic!("no text input: {other:?}"),
    }
}

fn rows(m: &Mask) -> Vec<String> {
    m.data
        .chunks(m.width)
        .map(|r| r.iter().map(|v| char::from(b'0' + v)).collect())
        .collect()
}

// ---------------------------------------------------------------- COCO ----

/// The fixture's images lie in `images/` beside the JSON, as in COCO's own layout.
fn coco_params() -> DatasetParams {
    DatasetParams {
        images_dir: Some("images".into()),
        ..DatasetParams::default()
    }
}

#[test]
fn coco_polygons_and_compressed_rle_match_pycocotools() {
    let r = reference("coco_polygons.json");
    let polys = r["polygons"].as_array().unwrap();
    assert_eq!(polys.len(), 60);
    for (i, p) in polys.iter().enumerate() {
        let h = p["height"].as_u64().unwrap() as usize;
        let w = p["width"].as_u64().unwrap() as usize;
        let xy: Vec<f64> = p["xy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let ours = Rle::from_polygon(&xy, h, w).decode().unwrap();
        let theirs = Rle::from_compressed(p["counts"].as_str().unwrap(), h, w)
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(ours, theirs, "polygon {i}: {xy:?}");
        let sum: u64 = ours.iter().map(|&v| u64::from(v)).sum();
        assert_eq!(sum, p["sum"].as_u64().unwrap(), "polygon {i}");
        assert_eq!(sum, p["area"].as_u64().unwrap(), "polygon {i}");
        for px in p["pixels"].as_array().unwrap() {
            let (y, x, v) = (
                px[0].as_u64().unwrap() as usize,
                px[1].as_u64().unwrap() as usize,
                px[2].as_u64().unwrap() as u8,
            );
            assert_eq!(theirs[y * w + x], v, "polygon {i} pixel ({x}, {y})");
        }
    }
}

#[test]
fn coco_dataset_boxes_masks_keypoints_classes() {
    let ds = construct_dataset(&fixture("coco/annotations.json"), &coco_params()).unwrap();
    assert_eq!(ds.len(), 3);
    // category ids 1, 3, 7 → classes 0, 1, 2
    assert_eq!(ds.classes(), ["person", "cat", "dog"]);

    let a = get_sample(&ds, 0).unwrap();
    assert!(a.source.ends_with("a.png"), "{}", a.source);
    let img = a.image_input("image").unwrap();
    assert_eq!((img.width, img.height, img.channels), (24, 16, 3));
    assert_eq!(a.targets.boxes.len(), 3);
    let b = a.targets.boxes[0];
    assert_eq!(
        (b.x0, b.y0, b.x1, b.y1, b.class),
        (2.3, 1.5, 2.3 + 9.4, 13.5, 0)
    );
    assert_eq!(a.targets.boxes[1].class, 1);
    assert_eq!(a.targets.crowd, [false, false, false]);
    // two instances with keypoints; `keypoints` is the first
    assert_eq!(a.targets.instance_keypoints.len(), 2);
    assert_eq!(a.targets.keypoints, a.targets.instance_keypoints[0]);
    assert_eq!(
        a.targets.keypoints[2],
        Keypoint {
            x: 7.5,
            y: 2.5,
            visibility: 1
        }
    );
    assert_eq!(a.targets.instance_keypoints[1][1].visibility, 0);

    let b = get_sample(&ds, 1).unwrap();
    assert_eq!(b.targets.crowd, [true, false]);
    assert_eq!(
        b.targets.boxes.iter().map(|b| b.class).collect::<Vec<_>>(),
        [2, 1]
    );
    assert!(b.targets.keypoints.is_empty());

    let empty = get_sample(&ds, 2).unwrap();
    assert!(empty.targets.boxes.is_empty() && empty.targets.masks.is_empty());

    // every mask equals pycocotools' annToMask exactly
    let r = reference("coco_masks.json");
    let expected = r["masks"].as_array().unwrap();
    let ours: Vec<&Mask> = a.targets.masks.iter().chain(&b.targets.masks).collect();
    assert_eq!(ours.len(), expected.len());
    for (m, e) in ours.iter().zip(expected) {
        let want: Vec<String> = e["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        assert_eq!(rows(m), want, "annotation {}", e["id"]);
        let sum: u64 = m.data.iter().map(|&v| u64::from(v)).sum();
        assert_eq!(sum, e["sum"].as_u64().unwrap());
        assert_eq!(sum, e["area"].as_u64().unwrap());
    }
    assert_eq!(a.targets.masks[0].class, 0);
    assert_eq!(b.targets.masks[0].class, 2);
}

#[test]
fn coco_horizontal_flip_keeps_boxes_masks_keypoints_in_sync() {
    let path = fixture("coco/annotations.json");
    let plain = get_sample(&construct_dataset(&path, &coco_params()).unwrap(), 0).unwrap();
    let flipped_ds = construct_dataset(
        &path,
        &DatasetParams {
            transforms: vec![TransformConfig::RandomHorizontalFlip {
                p: 1.0,
                flip_pairs: vec![[1, 2]],
            }],
            ..coco_params()
        },
    )
    .unwrap();
    let f = get_sample(&flipped_ds, 0).unwrap();
    let (w, h) = (24usize, 16usize);
    let (pi, fi) = (
        plain.image_input("image").unwrap(),
        f.image_input("image").unwrap(),
    );
    for y in 0..h {
        for x in 0..w {
            assert!((fi.get(x, y, 0) - pi.get(w - 1 - x, y, 0)).abs() < 1e-6);
        }
    }
    for (pb, fb) in plain.targets.boxes.iter().zip(&f.targets.boxes) {
        assert!((fb.x0 - (w as f32 - pb.x1)).abs() < 1e-4, "{pb:?} → {fb:?}");
        assert!((fb.x1 - (w as f32 - pb.x0)).abs() < 1e-4, "{pb:?} → {fb:?}");
        assert_eq!((fb.y0, fb.y1, fb.class), (pb.y0, pb.y1, pb.class));
    }
    for (pm, fm) in plain.targets.masks.iter().zip(&f.targets.masks) {
        for y in 0..h {
            for x in 0..w {
                assert_eq!(fm.data[y * w + x], pm.data[y * w + w - 1 - x]);
            }
        }
        // the mask stays inside its (mirrored) box's columns
        let cols: Vec<usize> = (0..w)
            .filter(|&x| (0..h).any(|y| fm.data[y * w + x] == 1))
            .collect();
        let fb = f.targets.boxes[plain.targets.masks.iter().position(|m| m == pm).unwrap()];
        assert!(*cols.first().unwrap() as f32 >= fb.x0.floor() - 1.0);
        assert!(*cols.last().unwrap() as f32 <= fb.x1.ceil());
    }
    // keypoints mirrored, left/right eye (1, 2) swapped
    let (pk, fk) = (&plain.targets.keypoints, &f.targets.keypoints);
    assert_eq!(fk.len(), 3);
    for (src, dst) in [(0, 0), (1, 2), (2, 1)] {
        assert!((fk[dst].x - (w as f32 - pk[src].x)).abs() < 1e-4);
        assert_eq!(fk[dst].y, pk[src].y);
        assert_eq!(fk[dst].visibility, pk[src].visibility);
    }
}

#[test]
fn coco_errors_are_typed() {
    let d = tmp("coco-bad");
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // malformed JSON: parse error with its line
    let p = write("broken.json", "{\n \"images\": [\n  {\"id\": 1,,}\n ]\n}");
    match construct_dataset(&p, &DatasetParams::default()).unwrap_err() {
        DataError::Parse { path, line, .. } => {
            assert_eq!(path, p);
            assert_eq!(line, Some(3));
        }
        e => panic!("{e:?}"),
    }
    // unknown category
    let p = write(
        "cat.json",
        r#"{"images": [{"id": 1, "file_name": "x.png", "width": 2, "height": 2}],
            "annotations": [{"id": 5, "image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 1]}],
            "categories": [{"id": 1, "name": "a"}]}"#,
    );
    let e = construct_dataset(&p, &DatasetParams::default()).unwrap_err();
    assert!(
        matches!(&e, DataError::Parse { reason, .. } if reason.contains("annotation id 5") && reason.contains("category_id 9")),
        "{e}"
    );
    // odd polygon
    let p = write(
        "poly.json",
        r#"{"images": [{"id": 1, "file_name": "x.png", "width": 2, "height": 2}],
            "annotations": [{"id": 6, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1],
                             "segmentation": [[0, 0, 1, 1, 2]]}],
            "categories": [{"id": 1, "name": "a"}]}"#,
    );
    let e = construct_dataset(&p, &DatasetParams::default()).unwrap_err();
    assert!(
        matches!(&e, DataError::Parse { reason, .. } if reason.contains("annotation id 6")),
        "{e}"
    );
    // RLE whose counts do not cover the image, and a missing image file
    std::fs::copy(fixture("coco/images/empty.png"), d.join("e.png")).unwrap();
    let p = write(
        "rle.json",
        r#"{"images": [{"id": 1, "file_name": "e.png", "width": 8, "height": 6},
                       {"id": 2, "file_name": "gone.png", "width": 8, "height": 6}],
            "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1],
                             "segmentation": {"size": [6, 8], "counts": [3, 4]}}],
            "categories": [{"id": 1, "name": "a"}]}"#,
    );
    let ds = construct_dataset(&p, &DatasetParams::default()).unwrap();
    let e = get_sample(&ds, 0).unwrap_err();
    assert!(
        matches!(&e, DataError::Invalid { what, reason } if what.contains("annotation id 7") && reason.contains("48")),
        "{e}"
    );
    let e = get_sample(&ds, 1).unwrap_err();
    assert!(
        matches!(&e, DataError::NotFound { path } if path.ends_with("gone.png")),
        "{e}"
    );
    // missing annotation file
    let e = construct_dataset(&d.join("none.json"), &params(DatasetFormat::Coco)).unwrap_err();
    assert!(matches!(e, DataError::NotFound { .. }));
    // compressed counts with a bad character
    assert!(Rle::from_compressed("0 1", 1, 1).is_err());
    assert!(Rle::from_compressed("0o", 1, 1).is_err());
}

/// Found by the fuzzer (issue 13): a polygon vertex at 1e22 made the
/// rasteriser walk billions of boundary points (a hang, then gigabytes);
/// run lengths summing past 2^64 and compressed numbers of 13 characters
/// overflowed (panics in debug builds).
#[test]
fn coco_masks_from_hostile_numbers_are_errors_not_hangs_or_panics() {
    let d = tmp("coco-hostile");
    std::fs::copy(fixture("coco/images/empty.png"), d.join("e.png")).unwrap();
    let p = d.join("far.json");
    std::fs::write(
        &p,
        r#"{"images": [{"id": 1, "file_name": "e.png", "width": 8, "height": 6}],
            "annotations": [{"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1],
                             "segmentation": [[0, 0, 1e22, 0, 1, 1]]}],
            "categories": [{"id": 1, "name": "a"}]}"#,
    )
    .unwrap();
    let ds = construct_dataset(&p, &DatasetParams::default()).unwrap();
    let e = get_sample(&ds, 0).unwrap_err();
    assert!(
        matches!(&e, DataError::Invalid { what, reason } if what.contains("annotation id 3") && reason.contains("polygon coordinate")),
        "{e}"
    );
    // Uncompressed counts whose sum overflows.
    let rle = Rle {
        height: 1,
        width: 1,
        counts: vec![u64::MAX, 2],
    };
    assert!(rle.decode().unwrap_err().contains("overflow"));
    // A compressed number of 13 characters (12 continuations, then a
    // negative last group) shifted past 64 bits.
    let e = Rle::from_compressed("PPPPPPPPPPPP@", 1, 1).unwrap_err();
    assert!(e.contains("too long"), "{e}");
    // Runs (each the previous-but-one plus a delta near 2^59) that grow past
    // i64::MAX.
    let big = format!("00{}", "___________?".repeat(40));
    assert!(
        Rle::from_compressed(&big, 1, 1)
            .unwrap_err()
            .contains("overflows")
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn coco_images_dir_param() {
    let d = tmp("coco-dir");
    std::fs::create_dir_all(d.join("pics")).unwrap();
    std::fs::copy(fixture("coco/images/empty.png"), d.join("pics/e.png")).unwrap();
    let p = d.join("ann.json");
    std::fs::write(
        &p,
        r#"{"images": [{"id": 1, "file_name": "e.png", "width": 8, "height": 6}],
            "categories": [{"id": 1, "name": "a"}]}"#,
    )
    .unwrap();
    let ds = construct_dataset(
        &p,
        &DatasetParams {
            images_dir: Some("pics".into()),
            ..DatasetParams::default()
        },
    )
    .unwrap();
    assert!(get_sample(&ds, 0).is_ok());
    // `{stem}` is the annotation file's stem: one setting for every split
    std::fs::create_dir_all(d.join("images/ann")).unwrap();
    std::fs::copy(fixture("coco/images/empty.png"), d.join("images/ann/e.png")).unwrap();
    let ds = construct_dataset(
        &p,
        &DatasetParams {
            images_dir: Some("images/{stem}".into()),
            ..DatasetParams::default()
        },
    )
    .unwrap();
    assert!(get_sample(&ds, 0).is_ok());
    // a wrong size in the JSON is an error naming the image
    std::fs::write(
        &p,
        r#"{"images": [{"id": 1, "file_name": "pics/e.png", "width": 9, "height": 6}],
            "categories": [{"id": 1, "name": "a"}]}"#,
    )
    .unwrap();
    let ds = construct_dataset(&p, &DatasetParams::default()).unwrap();
    let e = get_sample(&ds, 0).unwrap_err();
    assert!(
        matches!(&e, DataError::Invalid { what, .. } if what.ends_with("e.png")),
        "{e}"
    );
}

// ----------------------------------------------------------------- VOC ----

#[test]
fn voc_boxes_difficult_and_splits() {
    let root = fixture("voc");
    assert_eq!(guess_format(&root).unwrap(), DatasetFormat::Voc);
    let ds = construct_dataset(&root, &DatasetParams::default()).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.classes().len(), 20);
    let s = get_sample(&ds, 0).unwrap();
    let img = s.image_input("image").unwrap();
    assert_eq!((img.width, img.height), (16, 12));
    assert_eq!(s.targets.boxes.len(), 2);
    let dog = VOC_CLASSES.iter().position(|c| *c == "dog").unwrap();
    let person = VOC_CLASSES.iter().position(|c| *c == "person").unwrap();
    let b = s.targets.boxes[0];
    assert_eq!(
        (b.x0, b.y0, b.x1, b.y1, b.class),
        (1.0, 2.0, 10.0, 12.0, dog)
    );
    let b = s.targets.boxes[1];
    assert_eq!(
        (b.x0, b.y0, b.x1, b.y1, b.class),
        (10.0, 0.0, 16.0, 7.5, person)
    );
    assert_eq!(s.targets.difficult, [false, true]);

    let train = construct_dataset(
        &root,
        &DatasetParams {
            split: Some("train".into()),
            classes: Some(vec!["car".into()]),
            ..DatasetParams::default()
        },
    )
    .unwrap();
    assert_eq!(train.len(), 1);
    assert_eq!(train.classes(), ["car"]);
    let s = get_sample(&train, 0).unwrap();
    assert_eq!(s.targets.boxes[0].class, 0);
    assert_eq!(s.targets.difficult, [false]);

    // a class outside the list, a listed id without annotation, a missing split
    let cars_only = construct_dataset(
        &root,
        &DatasetParams {
            classes: Some(vec!["car".into()]),
            ..DatasetParams::default()
        },
    )
    .unwrap();
    let e = get_sample(&cars_only, 0).unwrap_err();
    assert!(
        matches!(&e, DataError::Invalid { what, reason } if what.ends_with("000001.xml") && reason.contains("dog")),
        "{e}"
    );
    let val = construct_dataset(
        &root,
        &DatasetParams {
            split: Some("val".into()),
            ..DatasetParams::default()
        },
    )
    .unwrap();
    assert!(get_sample(&val, 0).is_ok());
    let e = get_sample(&val, 1).unwrap_err();
    assert!(
        matches!(&e, DataError::NotFound { path } if path.ends_with("000003.xml")),
        "{e}"
    );
    let e = construct_dataset(
        &root,
        &DatasetParams {
            split: Some("test".into()),
            ..DatasetParams::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(&e, DataError::NotFound { path } if path.ends_with("test.txt")),
        "{e}"
    );
    let e = construct_dataset(&fixture("text"), &params(DatasetFormat::Voc)).unwrap_err();
    assert!(
        matches!(&e, DataError::NotFound { path } if path.ends_with("Annotations")),
        "{e}"
    );
}

#[test]
fn voc_malformed_xml_is_a_parse_error() {
    let d = tmp("voc-bad");
    std::fs::create_dir_all(d.join("Annotations")).unwrap();
    std::fs::write(
        d.join("Annotations/a.xml"),
        "<annotation><object><name>dog</name><bndbox><xmin>1</xmin></bndbox></object></annotation>",
    )
    .unwrap();
    std::fs::write(
        d.join("Annotations/b.xml"),
        "<annotation><filename>b.jpg</filename><object><name>dog</name><bndbox><xmin>x</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>",
    )
    .unwrap();
    std::fs::create_dir_all(d.join("JPEGImages")).unwrap();
    std::fs::copy(
        fixture("voc/JPEGImages/000002.jpg"),
        d.join("JPEGImages/b.jpg"),
    )
    .unwrap();
    let ds = construct_dataset(&d, &DatasetParams::default()).unwrap();
    let e = get_sample(&ds, 0).unwrap_err();
    assert!(
        matches!(&e, DataError::Parse { path, .. } if path.ends_with("a.xml")),
        "{e}"
    );
    let e = get_sample(&ds, 1).unwrap_err();
    assert!(
        matches!(&e, DataError::Parse { path, reason, .. } if path.ends_with("b.xml") && reason.contains("xmin")),
        "{e}"
    );
}

// --------------------------------------------------------------- audio ----

fn audio_of(s: &Sample) -> &unidl_data::Audio {
    match s.inputs.get("audio") {
        Some(Input::Audio(a)) => a,
        other => panic!("no audio input: {other:?}"),
    }
}

#[test]
fn audio_manifest_jsonl_labels_speakers_resampling() {
    let m = fixture("audio/manifest.jsonl");
    assert_eq!(guess_format(&m).unwrap(), DatasetFormat::AudioManifest);
    let ds = construct_dataset(&m, &DatasetParams::default()).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.classes(), ["hum", "tone"]);
    let s = get_sample(&ds, 0).unwrap();
    let a = audio_of(&s);
    assert_eq!(
        (a.sample_rate, a.channels, a.samples.len()),
        (8000, 2, 4000)
    );
    assert_eq!(s.targets.text.as_deref(), Some("two tones"));
    assert_eq!(s.targets.label, Some(1));
    assert_eq!(s.targets.speaker.as_deref(), Some("spk1"));
    let s = get_sample(&ds, 2).unwrap();
    assert_eq!(audio_of(&s).sample_rate, 16_000);
    assert_eq!(s.targets.label, Some(1));

    // resample and downmix at load
    let ds = construct_dataset(
        &m,
        &DatasetParams {
            sample_rate: Some(16_000),
            audio_channels: Some(1),
            ..DatasetParams::default()
        },
    )
    .unwrap();
    let a = audio_of(&get_sample(&ds, 0).unwrap()).clone();
    assert_eq!((a.sample_rate, a.channels), (16_000, 1));
    assert!(
        (a.samples.len() as i64 - 4000).abs() <= 2,
        "{}",
        a.samples.len()
    );

    // max_duration: the 1 s clip is too long for 0.75 s, the 0.25 s one is not
    let ds = construct_dataset(
        &m,
        &DatasetParams {
            max_duration: Some(0.75),
            ..DatasetParams::default()
        },
    )
    .unwrap();
    assert!(get_sample(&ds, 0).is_ok());
    let e = get_sample(&ds, 2).unwrap_err();
    assert!(
        matches!(&e, DataError::Invalid { what, reason } if what.ends_with("sine_440_16k_mono.wav") && reason.contains("max_duration")),
        "{e}"
    );
}

#[test]
fn audio_manifest_csv_and_errors() {
    let m = fixture("audio/manifest.csv");
    assert_eq!(guess_format(&m).unwrap(), DatasetFormat::AudioManifest);
    let ds = construct_dataset(&m, &DatasetParams::default()).unwrap();
    assert!(ds.classes().is_empty());
    let s = get_sample(&ds, 1).unwrap();
    assert_eq!(s.targets.text.as_deref(), Some("two tones, stereo"));
    assert_eq!(s.targets.label, None);
    assert_eq!(audio_of(&s).channels, 2);

    let ds = construct_dataset(&fixture("audio/missing.jsonl"), &DatasetParams::default()).unwrap();
    let e = get_sample(&ds, 0).unwrap_err();
    assert!(
        matches!(&e, DataError::NotFound { path } if path.ends_with("nope.wav")),
        "{e}"
    );

    let d = tmp("audio-bad");
    let p = d.join("m.jsonl");
    std::fs::write(
        &p,
        "{\"path\": \"a.wav\", \"transcript\": \"x\"}\n\n{\"path\": \"b.wav\"}\n",
    )
    .unwrap();
    let e = construct_dataset(&p, &params(DatasetFormat::AudioManifest)).unwrap_err();
    assert!(
        matches!(&e, DataError::Parse { line: Some(3), reason, .. } if reason.contains("transcript")),
        "{e}"
    );
    // a corrupt file names itself
    std::fs::write(d.join("bad.wav"), b"RIFF....WAVEjunk").unwrap();
    std::fs::write(&p, "{\"path\": \"bad.wav\", \"transcript\": \"x\"}\n").unwrap();
    let ds = construct_dataset(&p, &params(DatasetFormat::AudioManifest)).unwrap();
    let e = get_sample(&ds, 0).unwrap_err();
    assert!(
        matches!(&e, DataError::Corrupt { path, .. } if path.ends_with("bad.wav")),
        "{e}"
    );
    let e = construct_dataset(
        &p,
        &DatasetParams {
            max_duration: Some(-1.0),
            ..params(DatasetFormat::AudioManifest)
        },
    )
    .unwrap_err();
    assert!(matches!(&e, DataError::Config { key, .. } if key == "max_duration"));
}

// ---------------------------------------------------------------- text ----

#[test]
fn text_classification_manifests_and_folders() {
    let m = fixture("text/messages.jsonl");
    assert_eq!(guess_format(&m).unwrap(), DatasetFormat::TextClassification);
    let ds = construct_dataset(&m, &DatasetParams::default()).unwrap();
    assert_eq!(ds.classes(), ["ham", "spam"]);
    let s = get_sample(&ds, 0).unwrap();
    assert_eq!(text_input(&s), "Win money now!!!");
    assert_eq!(s.targets.label, Some(1));
    assert_eq!(get_sample(&ds, 3).unwrap().targets.label, Some(0));

    // CSV with a quoted multi-line text and integer labels
    let ds = construct_dataset(&fixture("text/messages.csv"), &DatasetParams::default()).unwrap();
    assert_eq!(ds.classes(), ["0", "1"]);
    let s = get_sample(&ds, 0).unwrap();
    assert_eq!(text_input(&s), "Hello,\nworld");
    assert_eq!(s.targets.label, Some(1));
    assert!(
        ds.source(1).unwrap().ends_with("messages.csv:4"),
        "{:?}",
        ds.source(1)
    );

    let root = fixture("text/folder");
    assert_eq!(guess_format(&root).unwrap(), DatasetFormat::TextFolder);
    let ds = construct_dataset(&root, &DatasetParams::default()).unwrap();
    assert_eq!(ds.len(), 3, "notes.md is not a .txt");
    assert_eq!(ds.classes(), ["neg", "pos"]);
    let s = get_sample(&ds, 2).unwrap();
    assert_eq!(text_input(&s), "great acting\n");
    assert_eq!(s.targets.label, Some(1));

    // a row without a label names its line; a missing manifest is NotFound
    let d = tmp("text-bad");
    let p = d.join("t.csv");
    std::fs::write(&p, "text,label\na,1\nb\n").unwrap();
    let e = construct_dataset(&p, &params(DatasetFormat::TextClassification)).unwrap_err();
    assert!(matches!(&e, DataError::Parse { line: Some(3), .. }), "{e}");
    let e = construct_dataset(
        &d.join("x.jsonl"),
        &params(DatasetFormat::TextClassification),
    )
    .unwrap_err();
    assert!(matches!(e, DataError::NotFound { .. }));
    let e = construct_dataset(&d, &params(DatasetFormat::TextFolder)).unwrap_err();
    assert!(matches!(e, DataError::Invalid { .. }), "{e}");
}

/// Found by the fuzzer (issue 13): integer labels are class indices, and a
/// label of 14294967296 in a 45-byte manifest made fourteen billion class
/// names (an allocation abort); `usize::MAX` overflowed `max + 1`.
#[test]
fn an_integer_label_beyond_the_class_bound_is_an_error_naming_the_manifest() {
    let dir = tmp("huge-label");
    for label in ["14294967296", "18446744073709551615"] {
        let text = dir.join("messages.csv");
        std::fs::write(&text, format!("text,label\nhello,1\nbye,{label}\n")).unwrap();
        let images = dir.join("images.csv");
        std::fs::write(&images, format!("path,label\na.png,0\nb.png,{label}\n")).unwrap();
        for (path, format) in [
            (&text, DatasetFormat::TextClassification),
            (&images, DatasetFormat::Csv),
        ] {
            let err = construct_dataset(path, &params(format)).unwrap_err();
            assert!(
                matches!(&err, DataError::Invalid { what, reason }
                    if what.contains(path.file_name().unwrap().to_str().unwrap())
                        && reason.contains(label)),
                "{err}"
            );
        }
    }
    // Integer labels below the bound are still class indices.
    let text = dir.join("ok.csv");
    std::fs::write(&text, "text,label\nhello,0\nbye,4\n").unwrap();
    let ds = construct_dataset(&text, &params(DatasetFormat::TextClassification)).unwrap();
    assert_eq!(ds.classes(), ["0", "1", "2", "3", "4"]);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn parallel_text_tsv_and_jsonl() {
    let p = fixture("parallel/en_de.tsv");
    assert_eq!(guess_format(&p).unwrap(), DatasetFormat::ParallelText);
    let ds = construct_dataset(&p, &DatasetParams::default()).unwrap();
    assert_eq!(ds.len(), 3, "header and blank line skipped");
    let s = get_sample(&ds, 1).unwrap();
    assert_eq!(text_input(&s), "Good morning");
    assert_eq!(s.targets.text.as_deref(), Some("Guten Morgen"));
    assert!(s.source.ends_with("en_de.tsv:4"), "{}", s.source);
    // a pair's length is its source's and target's characters
    assert_eq!(
        ds.lengths().unwrap()[1],
        "Good morning".len() + "Guten Morgen".len()
    );

    let j = fixture("parallel/en_de.jsonl");
    assert_eq!(guess_format(&j).unwrap(), DatasetFormat::ParallelText);
    let ds = construct_dataset(&j, &DatasetParams::default()).unwrap();
    let s = get_sample(&ds, 1).unwrap();
    assert_eq!(
        (text_input(&s), s.targets.text.as_deref()),
        ("No", Some("Nein"))
    );

    let e = construct_dataset(&fixture("parallel/bad.tsv"), &DatasetParams::default()).unwrap_err();
    assert!(
        matches!(&e, DataError::Parse { path, line: Some(2), .. } if path.ends_with("bad.tsv")),
        "{e}"
    );
}

// ---------------------------------------------------- guessing, skipping ----

#[test]
fn existing_guesses_still_hold() {
    let d = tmp("guess");
    std::fs::write(d.join("m.csv"), "path,label\na.png,0\n").unwrap();
    std::fs::write(d.join("m.jsonl"), "{\"path\": \"a.png\", \"label\": 0}\n").unwrap();
    assert_eq!(guess_format(&d.join("m.csv")).unwrap(), DatasetFormat::Csv);
    assert_eq!(
        guess_format(&d.join("m.jsonl")).unwrap(),
        DatasetFormat::Jsonl
    );
    assert_eq!(guess_format(&d).unwrap(), DatasetFormat::ImageFolder);
    assert_eq!(
        guess_format(&fixture("coco/annotations.json")).unwrap(),
        DatasetFormat::Coco
    );
    std::fs::write(d.join("x.bin"), "").unwrap();
    assert!(matches!(
        guess_format(&d.join("x.bin")).unwrap_err(),
        DataError::Config { .. }
    ));
    // unknown keys stay errors; the new keys parse from TOML
    let p: DatasetParams = toml::from_str(
        "format = \"audio_manifest\"\nsample_rate = 16000\naudio_channels = 1\nmax_duration = 2.5\non_error = \"skip\"",
    )
    .unwrap();
    assert_eq!(p.format, Some(DatasetFormat::AudioManifest));
    assert_eq!(p.on_error, OnError::Skip);
    assert!(toml::from_str::<DatasetParams>("frame = 3").is_err());
}

#[test]
fn skip_with_report_drops_only_broken_samples_and_says_why() {
    let d = tmp("skip");
    std::fs::copy(fixture("audio/clips/mono_8k.wav"), d.join("ok.wav")).unwrap();
    std::fs::write(d.join("bad.wav"), b"not a wav at all").unwrap();
    let m = d.join("m.jsonl");
    std::fs::write(
        &m,
        concat!(
            "{\"path\": \"ok.wav\", \"transcript\": \"a\"}\n",
            "{\"path\": \"bad.wav\", \"transcript\": \"b\"}\n",
            "{\"path\": \"gone.wav\", \"transcript\": \"c\"}\n",
            "{\"path\": \"ok.wav\", \"transcript\": \"d\"}\n",
        ),
    )
    .unwrap();
    // fail (default): all four listed, the broken ones fail when loaded
    let ds = construct_dataset(&m, &DatasetParams::default()).unwrap();
    assert_eq!(ds.len(), 4);
    assert!(ds.report().is_none());
    let report = ds.validate();
    assert_eq!(report.checked, 4);
    assert_eq!(
        report.failures.iter().map(|f| f.index).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(report.failures[0].source.ends_with("bad.wav"));
    assert!(report.failures[1].error.contains("gone.wav"));
    assert_eq!(report.good_indices(), [0, 3]);

    // skip: construction drops them and keeps the report
    let ds = construct_dataset(
        &m,
        &DatasetParams {
            on_error: OnError::Skip,
            ..DatasetParams::default()
        },
    )
    .unwrap();
    assert_eq!(ds.len(), 2);
    let texts: Vec<String> = (0..2)
        .map(|i| get_sample(&ds, i).unwrap().targets.text.unwrap())
        .collect();
    assert_eq!(texts, ["a", "d"]);
    let r = ds.report().unwrap();
    assert_eq!(r.failures.len(), 2);
    assert!(r.to_string().contains("2 of 4 samples failed"), "{r}");
}

// --------------------------------------------------------------- video ----

#[cfg(not(feature = "ffmpeg"))]
#[test]
fn video_without_ffmpeg_is_a_typed_error_naming_the_clip() {
    let d = tmp("video-noff");
    std::fs::create_dir_all(d.join("wave")).unwrap();
    let media = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/media");
    std::fs::copy(media.join("h264.mp4"), d.join("wave/a.mp4")).unwrap();
    assert_eq!(guess_format(&d).unwrap(), DatasetFormat::VideoFolder);
    let ds = construct_dataset(&d, &DatasetParams::default()).unwrap();
    let e = get_sample(&ds, 0).unwrap_err();
    assert!(
        matches!(&e, DataError::Corrupt { path, reason } if path.ends_with("a.mp4") && reason.contains("ffmpeg")),
        "{e}"
    );
}

#[cfg(feature = "ffmpeg")]
#[test]
fn video_folder_uniform_frames_resized() {
    let d = tmp("video");
    let media = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/media");
    for (class, clip) in [
        ("run", "h264.mp4"),
        ("run", "mpeg4.avi"),
        ("walk", "hevc.mkv"),
    ] {
        std::fs::create_dir_all(d.join(class)).unwrap();
        std::fs::copy(media.join(clip), d.join(class).join(clip)).unwrap();
    }
    std::fs::copy(media.join("truncated.mp4"), d.join("walk/truncated.mp4")).unwrap();
    assert_eq!(guess_format(&d).unwrap(), DatasetFormat::VideoFolder);
    let ds = construct_dataset(
        &d,
        &DatasetParams {
            frames: Some(4),
            frame_size: Some([12, 16]),
            ..DatasetParams::default()
        },
    )
    .unwrap();
    assert_eq!(ds.len(), 4);
    assert_eq!(ds.classes(), ["run", "walk"]);
    for i in 0..3 {
        let s = get_sample(&ds, i).unwrap();
        let Some(Input::Video(frames, fps)) = s.inputs.get("video") else {
            panic!("no video input");
        };
        assert_eq!(frames.len(), 4);
        assert!(fps.is_finite() && *fps > 0.0);
        for f in frames {
            assert_eq!((f.width, f.height, f.channels), (16, 12, 3));
            assert_eq!(f.data.len(), 16 * 12 * 3);
        }
    }
    assert_eq!(get_sample(&ds, 2).unwrap().targets.label, Some(1));
    let report = ds.validate();
    assert_eq!(report.failures.len(), 1, "{report}");
    assert!(report.failures[0].source.ends_with("truncated.mp4"));
}

#[test]
fn image_text_manifests_give_images_with_their_text() {
    let dir = tmp("image-text");
    std::fs::create_dir_all(dir.join("img")).unwrap();
    let img = Image {
        width: 8,
        height: 4,
        channels: 1,
        data: vec![0.5; 32],
    };
    unidl_data::parse::save_png(&img, &dir.join("img/a.png")).unwrap();
    let m = dir.join("lines.jsonl");
    std::fs::write(
        &m,
        "{\"path\": \"img/a.png\", \"text\": \"The jury said\", \"font\": \"X\"}\n{\"path\": \"img/a.png\", \"text\": \"it did\"}\n",
    )
    .unwrap();
    assert_eq!(guess_format(&m).unwrap(), DatasetFormat::ImageText);
    let p = DatasetParams {
        channels: Some(3),
        ..DatasetParams::default()
    };
    let ds = construct_dataset(&m, &p).unwrap();
    assert_eq!(ds.len(), 2);
    let s = get_sample(&ds, 0).unwrap();
    assert_eq!(s.targets.text.as_deref(), Some("The jury said"));
    let Some(Input::Image(i)) = s.inputs.get("image") else {
        panic!("no image input");
    };
    assert_eq!((i.width, i.height, i.channels), (8, 4, 3));
    // lengths (for length-grouped batching) are the texts' characters;
    // only text is an input of a text-classification set, not of OCR lines
    assert_eq!(ds.lengths(), Some(vec![13, 6]));
    assert!(!DatasetFormat::ImageText.has_text_inputs());
    assert!(DatasetFormat::TextClassification.has_text_inputs());
    // a row without text is a parse error naming the line
    std::fs::write(
        &m,
        "{\"path\": \"img/a.png\", \"text\": \"a\"}\n{\"path\": \"img/a.png\"}\n",
    )
    .unwrap();
    let err = construct_dataset(&m, &params(DatasetFormat::ImageText)).unwrap_err();
    assert!(
        err.to_string().contains("lines.jsonl:2") && err.to_string().contains("text"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).ok();
}

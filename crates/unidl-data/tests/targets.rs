//! Target sync (A-b): every per-instance vector (boxes, crowd, difficult,
//! areas, masks, instance keypoints) stays aligned through flips, crops that drop a
//! box, rotations and letterboxing, on a COCO sample read by the COCO reader.

use std::path::PathBuf;

use unidl_data::dataset::DatasetFormat;
use unidl_data::parse::save_png;
use unidl_data::transform::{
    BatchTransform, CenterCrop, HorizontalFlip, MixUp, Registry, Resize, Transform,
    pipeline_from_toml, rng_for,
};
use unidl_data::*;

const W: usize = 40;
const H: usize = 20;

/// A fresh folder per call (tests run in parallel).
fn tmp(name: &str) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("unidl-targets-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Instance `i` has class `i`; instance 1 is a crowd, instance 2 difficult.
/// Boxes, square polygon masks filling them, and two keypoints (a left/right
/// pair) on instances 0 and 2; the crowd has none.
const BOXES: [[f32; 4]; 3] = [
    [2.0, 2.0, 10.0, 10.0],
    [14.0, 4.0, 22.0, 14.0],
    [24.0, 6.0, 32.0, 16.0],
];
/// The `area` of instance 0's annotation; the others have none (box area).
const AREA_0: f64 = 41.5;
const KEYPOINTS: [Option<[[f32; 2]; 2]>; 3] = [
    Some([[4.0, 4.0], [8.0, 4.0]]),
    None,
    Some([[26.0, 8.0], [31.0, 8.0]]),
];

/// Writes a 40×20 coordinate-coded PNG and a COCO file with the three
/// instances, loads it through `construct_dataset` and marks instance 2
/// difficult (COCO has no such flag).
fn coco_sample() -> Sample {
    let d = tmp("coco");
    let mut img = Image::new(W, H, 3);
    for y in 0..H {
        for x in 0..W {
            img.set(x, y, 0, x as f32 / W as f32);
            img.set(x, y, 1, y as f32 / H as f32);
            img.set(x, y, 2, 0.5);
        }
    }
    save_png(&img, &d.join("a.png")).unwrap();
    let anns: Vec<serde_json::Value> = (0..3)
        .map(|i| {
            let [x0, y0, x1, y1] = BOXES[i];
            let mut a = serde_json::json!({
                "id": i + 1,
                "image_id": 7,
                "category_id": i + 1,
                "iscrowd": u8::from(i == 1),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
            });
            if i == 0 {
                a["area"] = serde_json::json!(AREA_0);
            }
            if let Some(k) = KEYPOINTS[i] {
                a["keypoints"] = serde_json::json!([k[0][0], k[0][1], 2, k[1][0], k[1][1], 2]);
            }
            a
        })
        .collect();
    let coco = serde_json::json!({
        "images": [{"id": 7, "file_name": "a.png", "width": W, "height": H}],
        "annotations": anns,
        "categories": [
            {"id": 1, "name": "person"},
            {"id": 2, "name": "crowd"},
            {"id": 3, "name": "hard"}
        ],
    });
    std::fs::write(d.join("ann.json"), coco.to_string()).unwrap();
    let params = DatasetParams {
        format: Some(DatasetFormat::Coco),
        ..DatasetParams::default()
    };
    let ds = construct_dataset(&d.join("ann.json"), &params).unwrap();
    let mut s = get_sample(&ds, 0).unwrap();
    s.targets.difficult = vec![false, false, true];
    s
}

/// Checks that every per-instance vector lines up with `boxes` (instance
/// identity = class), that each mask (its centre) and visible keypoint lies
/// inside its box and on the canvas, and that every pixel under a visible keypoint of
/// an instance is the colour of some source keypoint of that instance.
fn assert_aligned(s: &Sample, source_colours: &[Vec<[f32; 2]>]) {
    let t = &s.targets;
    let img = s.image_input("image").unwrap();
    let (w, h) = (img.width as f32, img.height as f32);
    let n = t.boxes.len();
    assert_eq!(t.crowd.len(), n, "crowd follows the boxes");
    assert_eq!(t.difficult.len(), n, "difficult follows the boxes");
    assert_eq!(t.areas.len(), n, "areas follow the boxes");
    for (i, b) in t.boxes.iter().enumerate() {
        assert_eq!(t.crowd[i], b.class == 1, "crowd flag of box {i} ({b:?})");
        assert_eq!(t.difficult[i], b.class == 2, "difficult flag of box {i}");
    }
    assert_eq!(t.masks.len(), t.mask_boxes.len());
    for (m, &bi) in t.masks.iter().zip(&t.mask_boxes) {
        let b = t.boxes[bi];
        assert_eq!(m.class, b.class, "mask names the box of its instance");
        assert_eq!((m.width, m.height), (img.width, img.height));
        // the centre of the mask's pixels lies in its box (a pixel of slack
        // for the nearest-neighbour sampling of the mask's edge)
        let (mut sx, mut sy, mut count) = (0.0f32, 0.0f32, 0usize);
        for y in 0..m.height {
            for x in 0..m.width {
                if m.data[y * m.width + x] == 1 {
                    sx += x as f32 + 0.5;
                    sy += y as f32 + 0.5;
                    count += 1;
                }
            }
        }
        if count > 0 {
            let (cx, cy) = (sx / count as f32, sy / count as f32);
            assert!(
                cx >= b.x0 - 1.0 && cx <= b.x1 + 1.0 && cy >= b.y0 - 1.0 && cy <= b.y1 + 1.0,
                "mask of class {} centred at ({cx}, {cy}), outside its box {b:?}",
                m.class
            );
        }
    }
    assert_eq!(t.instance_keypoints.len(), t.keypoint_boxes.len());
    for (kps, &bi) in t.instance_keypoints.iter().zip(&t.keypoint_boxes) {
        let b = t.boxes[bi];
        assert_eq!(kps.len(), 2);
        for k in kps {
            if k.visibility == 0 {
                continue;
            }
            assert!(k.x >= 0.0 && k.y >= 0.0 && k.x < w && k.y < h, "{k:?}");
            assert!(
                k.x >= b.x0 - 1e-3
                    && k.x <= b.x1 + 1e-3
                    && k.y >= b.y0 - 1e-3
                    && k.y <= b.y1 + 1e-3,
                "keypoint {k:?} outside its box {b:?}"
            );
            let (red, green) = (
                img.get(k.x as usize, k.y as usize, 0) * W as f32,
                img.get(k.x as usize, k.y as usize, 1) * H as f32,
            );
            let ok = source_colours[b.class]
                .iter()
                .any(|[x, y]| (red - x).abs() <= 1.5 && (green - y).abs() <= 1.5);
            assert!(
                ok,
                "pixel under keypoint {k:?} of class {} shows ({red}, {green}), not one of {:?}",
                b.class, source_colours[b.class]
            );
        }
    }
}

fn source_colours() -> Vec<Vec<[f32; 2]>> {
    KEYPOINTS
        .iter()
        .map(|k| k.map_or(Vec::new(), |k| k.to_vec()))
        .collect()
}

fn assert_box(b: &BBox, want: [f32; 4]) {
    let got = [b.x0, b.y0, b.x1, b.y1];
    assert!(
        got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-4),
        "box {got:?}, expected {want:?}"
    );
}

#[test]
fn coco_reader_links_masks_and_keypoints_to_their_boxes() {
    let s = coco_sample();
    let t = &s.targets;
    assert_eq!(t.boxes.len(), 3);
    assert_eq!(t.crowd, [false, true, false]);
    // instance 0's annotation `area`, the others' box areas
    assert_eq!(t.areas, [AREA_0, 80.0, 80.0]);
    assert_eq!(t.mask_boxes, [0, 1, 2]);
    // the crowd has no keypoints: the two keypoint sets name boxes 0 and 2
    assert_eq!(t.keypoint_boxes, [0, 2]);
    assert_eq!(t.keypoints, t.instance_keypoints[0]);
    assert_aligned(&s, &source_colours());
}

#[test]
fn horizontal_flip_mirrors_and_swaps_every_instance() {
    let s = coco_sample();
    let f = HorizontalFlip {
        flip_pairs: vec![[0, 1]],
    };
    let out = f.apply(s.clone(), &mut rng_for(0, 0, 0)).unwrap();
    let t = &out.targets;
    assert_eq!(t.boxes.len(), 3);
    for (b, [x0, y0, x1, y1]) in t.boxes.iter().zip(BOXES) {
        assert_box(b, [W as f32 - x1, y0, W as f32 - x0, y1]);
    }
    assert_eq!(t.keypoint_boxes, [0, 2]);
    // each instance: mirrored (x -> 40 - x), then left and right swapped
    for (kps, src) in t
        .instance_keypoints
        .iter()
        .zip([KEYPOINTS[0], KEYPOINTS[2]])
    {
        let src = src.unwrap();
        assert_eq!(
            [(kps[0].x, kps[0].y), (kps[1].x, kps[1].y)],
            [
                (W as f32 - src[1][0], src[1][1]),
                (W as f32 - src[0][0], src[0][1])
            ]
        );
        assert!(kps.iter().all(|k| k.visibility == 2));
    }
    assert_eq!(t.keypoints, t.instance_keypoints[0]);
    assert_aligned(&out, &source_colours());
    // flipping twice gives every target back
    let twice = f.apply(out, &mut rng_for(0, 0, 0)).unwrap();
    assert_eq!(twice.targets, s.targets);
}

#[test]
fn crop_drops_a_box_with_its_flags_mask_and_keypoints() {
    let s = coco_sample();
    // columns 10..30: instance 0 (x 2..10) leaves, 1 and 2 stay
    let out = CenterCrop { size: [20, 20] }
        .apply(s, &mut rng_for(0, 0, 0))
        .unwrap();
    let t = &out.targets;
    assert_eq!(t.boxes.iter().map(|b| b.class).collect::<Vec<_>>(), [1, 2]);
    assert_box(&t.boxes[0], [4.0, 4.0, 12.0, 14.0]);
    assert_box(&t.boxes[1], [14.0, 6.0, 20.0, 16.0]);
    assert_eq!(t.crowd, [true, false]);
    assert_eq!(t.difficult, [false, true]);
    assert_eq!(
        t.areas,
        [80.0, 80.0],
        "a crop keeps the areas of the boxes it keeps"
    );
    assert_eq!(t.mask_boxes, [0, 1]);
    assert_eq!(t.masks.iter().map(|m| m.class).collect::<Vec<_>>(), [1, 2]);
    // instance 2's keypoints now belong to box 1; its right keypoint (x 31 -> 21) left the canvas
    assert_eq!(t.keypoint_boxes, [1]);
    let k = &t.instance_keypoints[0];
    assert_eq!((k[0].x, k[0].y, k[0].visibility), (16.0, 8.0, 2));
    assert_eq!((k[1].x, k[1].visibility), (21.0, 0));
    // the single-instance `keypoints` (instance 0) stay, moved off the canvas, invisible
    assert_eq!(t.keypoints.len(), 2);
    assert!(t.keypoints.iter().all(|k| k.visibility == 0 && k.x < 0.0));
    assert_aligned(&out, &source_colours());
}

#[test]
fn quarter_rotation_drops_a_box_and_keeps_the_rest_aligned() {
    let s = coco_sample();
    let quarter = pipeline_from_toml(
        "[[transforms]]\ntype = \"random_rotation\"\ndegrees = [90.0, 90.0]\n",
        &Registry::new(),
    )
    .unwrap();
    let out = quarter.apply(s, &mut rng_for(0, 0, 0)).unwrap();
    let t = &out.targets;
    // about the centre (20, 10): (x, y) -> (30 - y, x - 10); instance 0 lands above the canvas
    assert_eq!(t.boxes.iter().map(|b| b.class).collect::<Vec<_>>(), [1, 2]);
    assert_box(&t.boxes[0], [16.0, 4.0, 26.0, 12.0]);
    assert_box(&t.boxes[1], [14.0, 14.0, 24.0, 20.0]);
    assert_eq!(
        (t.crowd.as_slice(), t.difficult.as_slice()),
        (&[true, false][..], &[false, true][..])
    );
    assert_eq!(t.mask_boxes, [0, 1]);
    assert_eq!(t.keypoint_boxes, [1]);
    assert_aligned(&out, &source_colours());
}

#[test]
fn letterbox_keeps_every_instance_aligned() {
    let s = coco_sample();
    let out = Resize {
        size: [32, 32],
        keep_ratio: true,
        fill: 0.0,
    }
    .apply(s, &mut rng_for(0, 0, 0))
    .unwrap();
    let t = &out.targets;
    // 40x20 -> 32x16 centred vertically: scale 0.8, offset 8
    for (b, [x0, y0, x1, y1]) in t.boxes.iter().zip(BOXES) {
        assert_box(b, [0.8 * x0, 0.8 * y0 + 8.0, 0.8 * x1, 0.8 * y1 + 8.0]);
    }
    assert_eq!(t.crowd, [false, true, false]);
    assert_eq!(t.difficult, [false, false, true]);
    // areas scale by 0.8²
    for (a, want) in t.areas.iter().zip([AREA_0, 80.0, 80.0]) {
        assert!(
            (a - want * 0.64).abs() < 1e-4,
            "area {a}, expected {}",
            want * 0.64
        );
    }
    assert_eq!(t.mask_boxes, [0, 1, 2]);
    assert_eq!(t.keypoint_boxes, [0, 2]);
    let k = t.instance_keypoints[1][1];
    assert!((k.x - 0.8 * 31.0).abs() < 1e-4 && (k.y - (0.8 * 8.0 + 8.0)).abs() < 1e-4);
    assert_aligned(&out, &source_colours());
}

#[test]
fn random_pipelines_keep_instances_aligned_after_drops() {
    // several geometric transforms in a row, so a later one sees what an earlier one dropped
    let p = pipeline_from_toml(
        r#"
[[transforms]]
type = "random_resized_crop"
size = [24, 32]
scale = [0.2, 1.0]
[[transforms]]
type = "random_horizontal_flip"
flip_pairs = [[0, 1]]
[[transforms]]
type = "random_affine"
degrees = [-40.0, 40.0]
translate = [0.2, 0.2]
scale = [0.8, 1.2]
[[transforms]]
type = "resize"
size = [32, 32]
keep_ratio = true
"#,
        &Registry::new(),
    )
    .unwrap();
    let base = coco_sample();
    let mut dropped = 0;
    for i in 0..40 {
        let out = p.apply(base.clone(), &mut rng_for(3, 0, i)).unwrap();
        dropped += 3 - out.targets.boxes.len();
        assert_aligned(&out, &source_colours());
    }
    assert!(
        dropped > 0,
        "no crop dropped a box; the test would not see a drop"
    );
}

#[test]
fn misaligned_per_instance_vectors_are_typed_errors() {
    let flip = HorizontalFlip::default();
    let mut s = coco_sample();
    s.targets.crowd.pop();
    let e = flip.apply(s, &mut rng_for(0, 0, 0)).unwrap_err();
    assert!(matches!(e, DataError::Transform { .. }), "{e}");
    assert!(
        e.to_string().contains("`crowd` has 2 entries for 3 boxes")
            && e.to_string().contains("a.png"),
        "{e}"
    );
    let mut s = coco_sample();
    s.targets.areas.push(1.0);
    let e = flip.apply(s, &mut rng_for(0, 0, 0)).unwrap_err();
    assert!(
        e.to_string().contains("`areas` has 4 entries for 3 boxes"),
        "{e}"
    );
    let mut s = coco_sample();
    s.targets.keypoint_boxes[1] = 5;
    let e = flip.apply(s, &mut rng_for(0, 0, 0)).unwrap_err();
    assert!(
        e.to_string().contains("`keypoint_boxes` names box 5"),
        "{e}"
    );
    let mut s = coco_sample();
    s.targets.mask_boxes.pop();
    let e = flip.apply(s, &mut rng_for(0, 0, 0)).unwrap_err();
    assert!(
        e.to_string()
            .contains("`mask_boxes` has 2 entries for 3 `masks`"),
        "{e}"
    );
}

#[test]
fn mixing_refuses_samples_whose_boxes_would_not_follow() {
    let mut a = coco_sample();
    a.targets.label = Some(0);
    let mut b = Sample::image(a.image_input("image").unwrap().clone(), Some(1), "plain");
    b.targets.label = Some(1);
    let e = MixUp {
        alpha: 0.4,
        num_classes: 2,
    }
    .apply_batch(vec![b.clone(), a], &mut rng_for(0, 0, 0))
    .unwrap_err();
    assert!(
        e.to_string().contains("3 boxes") && e.to_string().contains("a.png"),
        "{e}"
    );
    // without spatial targets, mixing works
    let ok = MixUp {
        alpha: 0.4,
        num_classes: 2,
    }
    .apply_batch(vec![b.clone(), b], &mut rng_for(0, 0, 0));
    assert!(ok.is_ok());
}

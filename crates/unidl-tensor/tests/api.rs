//! The standard's Tensor and Module interfaces and their error cases, on flex.
//! (Numerical agreement with PyTorch on every back-end is the conformance
//! suite's job: `tests/conformance`.)

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::Tensor as BT;
use unidl_backend::{BackendError, DType, Device};
use unidl_tensor::module::{
    Forward, ModuleApi, ModuleError, StateDict, backward, load_state_dict_file, write_atomic,
};
use unidl_tensor::{
    Axes, Complex, Data, Idx, Tensor, TensorError, index, initialize, permute, reshape,
};

fn dev() -> Device {
    Device::flex()
}

fn f(v: Vec<f32>, shape: &[usize]) -> Tensor {
    Tensor::from_f32(v, shape, &dev()).unwrap()
}

// ----- T-a ranks -----

#[test]
fn ranks_up_to_max_rank_and_beyond_it_a_typed_error() {
    assert_eq!(unidl_tensor::MAX_RANK, 6);
    let six = Tensor::from_f32(vec![1.0, 2.0], &[1, 1, 1, 1, 1, 2], &dev()).unwrap();
    assert_eq!(six.rank(), 6);
    let e = Tensor::from_f32(vec![1.0, 2.0], &[1, 1, 1, 1, 1, 1, 2], &dev()).unwrap_err();
    assert!(
        matches!(e, TensorError::RankTooLarge { rank: 7, max: 6 }),
        "{e}"
    );
    let e = reshape(&six, &[1, 1, 1, 1, 1, 1, 2]).unwrap_err();
    assert!(
        matches!(e, TensorError::RankTooLarge { rank: 7, max: 6 }),
        "{e}"
    );
}

// ----- A.1.2.1 initialize -----

#[test]
fn initialize_infers_shape_and_every_dtype() {
    let t = initialize(
        vec![vec![vec![1.5f32, 2.0]], vec![vec![3.0, 4.0]]],
        None,
        &dev(),
    )
    .unwrap();
    assert_eq!(t.shape(), &[2, 1, 2]);
    assert_eq!(t.dtype(), DType::Float32);
    let s = initialize(5i64, None, &dev()).unwrap();
    assert_eq!((s.rank(), s.item().unwrap()), (0, 5.0));
    for (dtype, data) in [
        (DType::Float64, Data::from(vec![1.0, -2.0])),
        (DType::Int32, Data::from(vec![1, -2])),
        (DType::Int16, Data::from(vec![1, -2])),
        (DType::Int8, Data::from(vec![1, -2])),
        (DType::UInt8, Data::from(vec![1, 2])),
        (DType::Bool, Data::from(vec![true, false])),
    ] {
        let t = initialize(data, Some(dtype), &dev()).unwrap();
        assert_eq!(t.dtype(), dtype);
        assert_eq!(t.shape(), &[2]);
    }
    let z = initialize(
        vec![Complex::new(1.0, 2.0), Complex::new(0.0, -1.0)],
        None,
        &dev(),
    )
    .unwrap();
    assert_eq!(z.dtype(), DType::Complex64);
    let s = initialize(vec![vec!["a", "b"], vec!["c", "d"]], None, &dev()).unwrap();
    assert_eq!(s.dtype(), DType::String);
}

#[test]
fn initialize_rejects_ragged_data_naming_the_position() {
    let e = initialize(vec![vec![1, 2, 3], vec![4, 5]], None, &dev()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ragged data at [1]: expected 3 elements, found 2"
    );
    let e = initialize(vec!["a"], Some(DType::Float32), &dev()).unwrap_err();
    assert!(matches!(e, TensorError::BadData { .. }), "{e}");
}

#[test]
fn unsupported_dtype_is_a_typed_backend_error() {
    let mut report = unidl_backend::report_for(unidl_backend::BackendKind::Flex);
    report.dtypes.clear();
    let e = report.require("initialize", DType::Int8).unwrap_err();
    assert!(matches!(e, BackendError::Unsupported { .. }));
}

#[test]
fn initializers_and_random_fills() {
    let d = dev();
    assert_eq!(
        Tensor::zeros(&[2, 2], DType::Int64, &d)
            .unwrap()
            .to_vec_i64()
            .unwrap(),
        vec![0; 4]
    );
    assert_eq!(
        Tensor::ones(&[3], DType::Float64, &d)
            .unwrap()
            .to_vec_f64()
            .unwrap(),
        vec![1.0; 3]
    );
    assert_eq!(
        Tensor::full(&[2], 7.0, DType::Int32, &d)
            .unwrap()
            .to_vec_i64()
            .unwrap(),
        vec![7, 7]
    );
    let e = Tensor::empty(&[4, 4], DType::Float32, &d).unwrap();
    assert_eq!(e.shape(), &[4, 4]);
    let l = f(vec![1.0, 2.0], &[2]).full_like(3.0).unwrap();
    assert_eq!(l.to_vec_f64().unwrap(), vec![3.0, 3.0]);
    assert_eq!(
        Tensor::from_tensor(&l).to_vec_f64().unwrap(),
        vec![3.0, 3.0]
    );
    let u = Tensor::uniform(-1.0, 1.0, &[1000], &d)
        .unwrap()
        .to_vec_f64()
        .unwrap();
    assert!(u.iter().all(|x| (-1.0..1.0).contains(x)));
    let n = Tensor::normal(5.0, 0.1, &[1000], &d)
        .unwrap()
        .mean(Axes::All, false)
        .unwrap()
        .item()
        .unwrap();
    assert!((n - 5.0).abs() < 0.05, "normal mean {n}");
    let b = Tensor::bernoulli(0.25, &[4000], &d)
        .unwrap()
        .mean(Axes::All, false)
        .unwrap()
        .item()
        .unwrap();
    assert!((b - 0.25).abs() < 0.05, "bernoulli mean {b}");
    let probs = f(vec![0.0, 1.0, 0.0, 1.0], &[4]);
    assert_eq!(
        probs.bernoulli_like().unwrap().to_vec_f64().unwrap(),
        vec![0.0, 1.0, 0.0, 1.0]
    );
    assert!(Tensor::randint(3, 3, &[2], &d).is_err());
    // Exact integers in any i64 range: a float32 draw could not produce
    // odd numbers above 2^24, nor tell 2^40 + 1 from 2^40.
    let big = Tensor::randint(1 << 40, (1 << 40) + 3, &[300], &d)
        .unwrap()
        .to_vec_i64()
        .unwrap();
    for v in [1i64 << 40, (1 << 40) + 1, (1 << 40) + 2] {
        assert!(big.contains(&v), "{v} never drawn");
    }
    assert!(big.iter().all(|&v| ((1 << 40)..(1 << 40) + 3).contains(&v)));
    let wide = Tensor::randint(i64::MIN, i64::MAX, &[64], &d)
        .unwrap()
        .to_vec_i64()
        .unwrap();
    assert!(
        wide.iter().any(|v| v % 2 != 0)
            && wide.iter().any(|v| *v < 0)
            && wide.iter().any(|v| *v > 0)
    );
    assert!(Tensor::normal(0.0, -1.0, &[2], &d).is_err());
    assert!(Tensor::bernoulli(1.5, &[2], &d).is_err());
}

// ----- A.1.2.2–A.1.2.4 index, permute, reshape -----

#[test]
fn index_slices_and_errors() {
    let t = f((0..24).map(|x| x as f32).collect(), &[2, 3, 4]);
    let r = index(
        &t,
        &[
            Idx::At(-1),
            Idx::Slice {
                start: Some(1),
                stop: None,
                step: 1,
            },
            Idx::At(0),
        ],
    )
    .unwrap();
    assert_eq!(
        (r.shape().to_vec(), r.to_vec_f64().unwrap()),
        (vec![2], vec![16.0, 20.0])
    );
    let e = index(&t, &[Idx::At(2)]).unwrap_err();
    assert_eq!(
        e,
        TensorError::IndexOutOfRange {
            axis: 0,
            index: 2,
            size: 2
        }
    );
    let e = index(&t, &[Idx::Full, Idx::Full, Idx::Full, Idx::Full]).unwrap_err();
    assert!(
        e.to_string().contains("4 indices for a tensor of rank 3"),
        "{e}"
    );
    let e = index(
        &t,
        &[Idx::Slice {
            start: None,
            stop: None,
            step: 0,
        }],
    )
    .unwrap_err();
    assert!(e.to_string().contains("step cannot be zero"));
}

#[test]
fn permute_and_reshape_errors_name_shapes() {
    let t = f((0..6).map(|x| x as f32).collect(), &[2, 3]);
    assert_eq!(
        permute(&t, &[1, 0]).unwrap().to_vec_f64().unwrap(),
        vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    );
    assert!(permute(&t, &[0, 0]).is_err());
    assert!(permute(&t, &[0]).is_err());
    let e = reshape(&t, &[4, 2]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "reshape: cannot reshape [2, 3] (6 elements) into [4, 2]"
    );
    assert_eq!(reshape(&t, &[3, -1]).unwrap().shape(), &[3, 2]);
    assert_eq!(
        t.unsqueeze(0).unwrap().squeeze(Some(0)).unwrap().shape(),
        &[2, 3]
    );
    assert!(t.squeeze(Some(0)).is_err());
    assert_eq!(t.flatten(0, -1).unwrap().shape(), &[6]);
}

#[test]
fn broadcast_and_join_errors_name_both_shapes() {
    let a = f(vec![0.0; 6], &[2, 3]);
    let b = f(vec![0.0; 8], &[2, 4]);
    let e = a.add(&b).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("add: shapes [2, 3] and [2, 4] are incompatible"),
        "{e}"
    );
    let e = a.matmul(&b).unwrap_err();
    assert!(e.to_string().contains("[2, 3] and [2, 4]"), "{e}");
    let e = Tensor::concat(&[a.clone(), b.clone()], 0).unwrap_err();
    assert!(e.to_string().contains("[2, 3] and [2, 4]"), "{e}");
    assert!(Tensor::stack(&[a.clone(), b], 0).is_err());
    assert_eq!(a.split(2, 1).unwrap().len(), 2);
    assert!(a.split_sizes(&[1, 1], 1).is_err());
    let e = a.sum(Axes::Dims(&[2]), false).unwrap_err();
    assert!(matches!(
        e,
        TensorError::BadDim {
            dim: 2,
            rank: 2,
            ..
        }
    ));
}

#[test]
fn queries_casts_and_burn_round_trip() {
    let t = f(vec![1.7, -2.2], &[2]);
    assert_eq!(
        t.to_dtype(DType::Int64).unwrap().to_vec_i64().unwrap(),
        vec![1, -2]
    );
    assert_eq!(t.to_dtype(DType::Float64).unwrap().dtype(), DType::Float64);
    assert!(t.to_dtype(DType::String).is_err());
    let c = t.to_dtype(DType::Complex64).unwrap();
    assert!(c.to_dtype(DType::Float32).is_err());
    assert_eq!(c.real().unwrap().to_vec_f32().unwrap(), vec![1.7, -2.2]);
    let burn: BT<1> = t.clone().into_burn().unwrap();
    assert_eq!(burn.dims(), [2]);
    let back = Tensor::from_burn(burn).unwrap();
    assert_eq!(back.to_vec_f32().unwrap(), vec![1.7, -2.2]);
    assert!(t.clone().into_burn::<2, burn::tensor::Float>().is_err());
    assert!(t.clone().into_burn::<1, burn::tensor::Int>().is_err());
    assert_eq!(t.device(), dev());
}

#[test]
fn strings_support_structure_not_arithmetic() {
    let s = initialize(vec![vec!["a", "b", "c"], vec!["d", "e", "f"]], None, &dev()).unwrap();
    let r = s.reshape(&[3, 2]).unwrap();
    assert_eq!(
        r.index(&[Idx::At(1)]).unwrap().to_strings().unwrap(),
        vec!["c", "d"]
    );
    let c = Tensor::concat(&[s.clone(), s.clone()], 1).unwrap();
    assert_eq!(
        c.index(&[Idx::At(0)]).unwrap().to_strings().unwrap(),
        vec!["a", "b", "c", "a", "b", "c"]
    );
    let st = Tensor::stack(&[s.clone(), s.clone()], 0).unwrap();
    assert_eq!(st.shape(), &[2, 2, 3]);
    let parts = s.split(2, 1).unwrap();
    assert_eq!(parts[1].to_strings().unwrap(), vec!["c", "f"]);
    assert!(matches!(s.mul(&s), Err(TensorError::DTypeOp { .. })));
    assert!(matches!(
        s.sum(Axes::All, false),
        Err(TensorError::DTypeOp { .. })
    ));
    assert!(s.ne(&s).unwrap().to_vec_bool().unwrap().iter().all(|b| !b));
}

// ----- A.2 Module -----

#[derive(Module, Debug)]
struct Net {
    first: Linear,
    norm: BatchNorm,
    blocks: Vec<Linear>,
}

fn net(device: &Device) -> Net {
    Net {
        first: LinearConfig::new(3, 4).init(device),
        norm: BatchNormConfig::new(4).init(device),
        blocks: vec![
            LinearConfig::new(4, 4).init(device),
            LinearConfig::new(4, 2).init(device),
        ],
    }
}

impl Forward for Net {
    fn forward_dyn(&self, input: &Tensor) -> unidl_tensor::Result<Tensor> {
        let x: BT<2> = input.clone().into_burn()?;
        let x = self.first.forward(x);
        let x: BT<3> = self.norm.forward(x.unsqueeze_dim::<3>(2));
        let mut x: BT<2> = x.squeeze_dim(2);
        for b in &self.blocks {
            x = b.forward(x);
        }
        Tensor::from_burn(x)
    }
}

#[test]
fn parameters_buffers_and_modules_are_listed_by_path() {
    let m = net(&dev());
    let names: Vec<String> = m.get_parameters().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        [
            "first.weight",
            "first.bias",
            "norm.gamma",
            "norm.beta",
            "blocks.0.weight",
            "blocks.0.bias",
            "blocks.1.weight",
            "blocks.1.bias"
        ]
    );
    let buffers: Vec<String> = m.get_buffers().into_iter().map(|(k, _)| k).collect();
    assert_eq!(buffers, ["norm.running_mean", "norm.running_var"]);
    let modules: Vec<(String, String)> = m
        .get_modules()
        .into_iter()
        .map(|i| (i.path, i.type_name))
        .collect();
    assert_eq!(
        modules,
        [
            ("".into(), "Net".into()),
            ("first".into(), "Linear".into()),
            ("norm".into(), "BatchNorm".into()),
            ("blocks".into(), "Vec".into()),
            ("blocks.0".into(), "Linear".into()),
            ("blocks.1".into(), "Linear".into()),
        ]
    );
    let sub = m.get_submodule("blocks.1").unwrap();
    assert_eq!(sub.info.num_elements, 4 * 2 + 2);
    assert_eq!(
        sub.parameters
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["weight", "bias"]
    );
    let e = m.get_submodule("blocks.7").unwrap_err();
    assert!(matches!(e, ModuleError::NoSuchModule { .. }) && e.to_string().contains("`blocks.1`"));
}

#[test]
fn load_state_dict_is_strict_and_reports_every_mismatch() {
    let d = dev();
    let a = net(&d);
    let mut sd = a.state_dict();
    sd.remove("first.bias");
    sd.insert("extra.weight".into(), f(vec![0.0], &[1]));
    sd.insert("blocks.1.bias".into(), f(vec![0.0; 3], &[3]));
    let e = net(&d).load_state_dict(&sd).unwrap_err();
    let ModuleError::Mismatch(report) = &e else {
        panic!("{e}")
    };
    assert_eq!(report.missing, ["first.bias"]);
    assert_eq!(report.unexpected, ["extra.weight"]);
    assert_eq!(
        report.shape_mismatch,
        [("blocks.1.bias".to_string(), vec![2], vec![3])]
    );
    let msg = e.to_string();
    assert!(
        msg.contains("missing keys: first.bias") && msg.contains("unexpected keys: extra.weight"),
        "{msg}"
    );
    // Lenient: loads what matches, reports the rest.
    let (b, report) = net(&d).load_state_dict_lenient(&sd).unwrap();
    assert!(!report.is_clean());
    assert_eq!(
        b.state_dict()["first.weight"].to_vec_f64().unwrap(),
        a.state_dict()["first.weight"].to_vec_f64().unwrap()
    );
    // Strict and clean.
    let c = net(&d).load_state_dict(&a.state_dict()).unwrap();
    for (k, t) in a.state_dict() {
        assert_eq!(
            t.to_vec_f64().unwrap(),
            c.state_dict()[&k].to_vec_f64().unwrap(),
            "{k}"
        );
    }
}

#[test]
fn training_state_saves_atomically_and_rejects_corrupt_files() {
    let dir = std::env::temp_dir().join(format!("unidl-api-{}", std::process::id()));
    let path = dir.join("state.safetensors");
    let d = dev();
    let a = net(&d);
    a.save_training_state(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    // No temporary file is left behind.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    let b = net(&d).load_training_state(&path).unwrap();
    assert_eq!(
        b.state_dict()["blocks.0.weight"].to_vec_f64().unwrap(),
        a.state_dict()["blocks.0.weight"].to_vec_f64().unwrap()
    );
    // Truncated file: typed error naming the file.
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let e = net(&d).load_training_state(&path).unwrap_err();
    assert!(
        matches!(e, ModuleError::Io { .. }) && e.to_string().contains("state.safetensors"),
        "{e}"
    );
    // An atomic write replaces the whole file or nothing.
    write_atomic(&path, &good).unwrap();
    assert_eq!(
        load_state_dict_file(&path, &d).unwrap().len(),
        StateDict::from(a.state_dict()).len()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn backward_returns_input_and_weight_gradients() {
    let d = dev();
    let m = net(&d).valid();
    let x = f(vec![0.5, -1.0, 2.0, 1.0, 0.0, -0.5], &[2, 3]);
    let g = f(vec![1.0, 0.0, 0.0, 1.0], &[2, 2]);
    let grads = backward(&m, &x, &g).unwrap();
    let gx = grads.input.unwrap();
    assert_eq!(gx.shape(), &[2, 3]);
    assert_eq!(grads.parameters.len(), 8);
    assert_eq!(grads.parameters["blocks.1.weight"].shape(), &[4, 2]);
    // Finite-difference check of dL/dx for L = sum(out * g).
    let loss = |x: &Tensor| {
        m.forward_dyn(x)
            .unwrap()
            .mul(&g)
            .unwrap()
            .sum(Axes::All, false)
            .unwrap()
            .item()
            .unwrap()
    };
    let base: Vec<f32> = x.to_vec_f32().unwrap();
    let analytic = gx.to_vec_f64().unwrap();
    for i in 0..base.len() {
        let h = 1e-2f32;
        let mut p = base.clone();
        p[i] += h;
        let mut q = base.clone();
        q[i] -= h;
        let num = (loss(&f(p, &[2, 3])) - loss(&f(q, &[2, 3]))) / (2.0 * h as f64);
        assert!(
            (num - analytic[i]).abs() < 1e-2,
            "dL/dx[{i}]: numeric {num}, analytic {}",
            analytic[i]
        );
    }
    // Wrong grad_output shape is a typed error naming both shapes.
    let e = backward(&m, &x, &f(vec![0.0; 3], &[3])).unwrap_err();
    assert!(e.to_string().contains("[2, 2] and [3]"), "{e}");
}

// ----- A.2.2.5 register_backward_function -----

#[test]
fn user_backward_function_replaces_the_derived_gradient() {
    use unidl_tensor::autograd::{Tape, register_backward_function};
    let ad = dev().autodiff();
    // cube computed outside the graph, with its true derivative supplied by hand
    let cube = register_backward_function(
        "cube",
        |x| x.mul(x)?.mul(x),
        |x, _y, gy| x.mul(x)?.mul_scalar(3.0)?.mul(gy),
    );
    let w = Tensor::from_f32(vec![0.5, -1.0, 2.0], &[3], &ad)
        .unwrap()
        .require_grad()
        .unwrap();
    let x = w.mul_scalar(2.0).unwrap(); // upstream graph: x = 2w
    let tape = Tape::new();
    let y = tape.apply(&cube, &x).unwrap();
    let loss = y.sum(Axes::All, false).unwrap();
    let grads = tape.backward(&loss).unwrap();
    // dL/dw = 3 (2w)^2 * 2 = 24 w^2
    let gw = grads.grad(&w).unwrap().to_vec_f64().unwrap();
    for (g, wv) in gw.iter().zip([0.5, -1.0, 2.0]) {
        assert!(
            (g - 24.0 * wv * wv).abs() < 1e-4,
            "{g} vs {}",
            24.0 * wv * wv
        );
    }
    // A backward returning the wrong shape is a typed error naming the function.
    let bad = register_backward_function(
        "bad",
        |x| Ok(x.clone()),
        |_x, _y, _gy| Tensor::zeros(&[7], DType::Float32, &Device::flex()),
    );
    let x = w.mul_scalar(2.0).unwrap(); // a fresh graph: the first backward consumed the old one
    let tape = Tape::new();
    let y = tape.apply(&bad, &x).unwrap();
    let e = tape
        .backward(&y.sum(Axes::All, false).unwrap())
        .err()
        .unwrap();
    assert!(e.to_string().contains("backward function `bad`"), "{e}");
    // Inside a model (no tape): a residual around the function sums both
    // paths in one backward pass. L = sum(x + cube(x)), x = 2w:
    // dL/dw = 2 (1 + 3 (2w)^2) = 2 + 24 w^2.
    let x = w.mul_scalar(2.0).unwrap();
    let y = unidl_tensor::autograd::apply(&cube, &x).unwrap();
    let loss = x.add(&y).unwrap().sum(Axes::All, false).unwrap();
    let gw = unidl_tensor::autograd::backward(&loss)
        .unwrap()
        .grad(&w)
        .unwrap()
        .to_vec_f64()
        .unwrap();
    for (g, wv) in gw.iter().zip([0.5, -1.0, 2.0]) {
        assert!((g - (2.0 + 24.0 * wv * wv)).abs() < 1e-4, "{g}");
    }
    // ... and an error of the user's backward comes out of `backward`.
    let x = w.mul_scalar(2.0).unwrap();
    let y = unidl_tensor::autograd::apply(&bad, &x).unwrap();
    let e = y.sum(Axes::All, false).unwrap().backward().err().unwrap();
    assert!(e.to_string().contains("backward function `bad`"), "{e}");
    assert_eq!(unidl_tensor::autograd::pending(), 0);
    // Backward from an untracked tensor is a typed error, not a panic.
    assert!(f(vec![1.0], &[1]).backward().is_err());
}

// ----- A.2.2.1 forward(input, **kwargs): named inputs and options -----

/// A text-classifier head: token features `[B, T, 3]` pooled over the
/// positions the attention `mask` `[B, T]` keeps (`pool` = "mean" | "max"),
/// then `first` (3 → 4); `scale` multiplies the logits.
struct MaskedHead(Net);

impl Forward for MaskedHead {
    fn forward_dyn(&self, _input: &Tensor) -> unidl_tensor::Result<Tensor> {
        Err(TensorError::Invalid {
            op: "forward".into(),
            reason: "MaskedHead takes named inputs `features` and `mask`".into(),
        })
    }

    fn forward_named(
        &self,
        inputs: &unidl_tensor::module::Inputs,
    ) -> unidl_tensor::Result<unidl_tensor::module::Outputs> {
        inputs.expect_only(&["features", "mask", "pool", "scale"])?;
        let x = inputs.tensor("features")?;
        let mask = inputs.tensor("mask")?.unsqueeze(-1)?; // [B, T, 1]
        let kept = x.mul(&mask)?;
        let pooled = match inputs.str_or("pool", "mean")? {
            "mean" => kept
                .sum(Axes::Dims(&[1]), false)?
                .div(&mask.sum(Axes::Dims(&[1]), false)?)?,
            // masked positions pushed far below any kept value
            "max" => kept
                .add(&mask.mul_scalar(1e9)?.add_scalar(-1e9)?)?
                .max(Axes::Dims(&[1]), false)?,
            other => {
                return Err(TensorError::Invalid {
                    op: "forward".into(),
                    reason: format!("pool `{other}`: use mean or max"),
                });
            }
        };
        let logits: BT<2> = self.0.first.forward(pooled.into_burn()?);
        let logits = Tensor::from_burn(logits)?.mul_scalar(inputs.float_or("scale", 1.0)?)?;
        Ok([("logits".to_string(), logits)].into())
    }
}

#[test]
fn forward_takes_named_inputs_and_options_and_names_bad_keys() {
    use unidl_tensor::module::{Inputs, forward_with};
    let head = MaskedHead(net(&dev()));
    // two sequences of 3 positions; the second keeps only its first position
    let feats = f(
        vec![
            1.0, 2.0, 3.0, 0.0, 1.0, 0.0, 2.0, 0.0, 1.0, //
            4.0, 4.0, 4.0, 9.0, 9.0, 9.0, -9.0, 9.0, 0.0,
        ],
        &[2, 3, 3],
    );
    let mask = f(vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0], &[2, 3]);
    let args = Inputs::new().with("features", &feats).with("mask", &mask);
    let mean = forward_with(&head, &args).unwrap()["logits"]
        .to_vec_f32()
        .unwrap();
    // The masked positions of row 2 do not matter: row 2 = head([4, 4, 4]).
    let alone = forward_with(
        &head,
        &Inputs::new()
            .with("features", f(vec![4.0; 3], &[1, 1, 3]))
            .with("mask", f(vec![1.0], &[1, 1])),
    )
    .unwrap()["logits"]
        .to_vec_f32()
        .unwrap();
    for (a, b) in mean[4..].iter().zip(&alone) {
        assert!((a - b).abs() < 1e-5, "{mean:?} vs {alone:?}");
    }
    // Options change the computation: max pooling differs, scale multiplies.
    let max = forward_with(&head, &args.clone().with("pool", "max")).unwrap()["logits"]
        .to_vec_f32()
        .unwrap();
    assert_ne!(max[..4], mean[..4]);
    assert_eq!(max[4..], mean[4..], "one kept position: max = mean");
    let scaled = forward_with(&head, &args.clone().with("scale", 2.0)).unwrap()["logits"]
        .to_vec_f32()
        .unwrap();
    for (s, m) in scaled.iter().zip(&mean) {
        assert!((s - 2.0 * m).abs() < 1e-5);
    }
    // Bad calls are typed errors naming the key.
    let err = |a: &Inputs| forward_with(&head, a).unwrap_err().to_string();
    let e = err(&Inputs::new().with("features", &feats));
    assert!(
        e.contains("missing input `mask`") && e.contains("`features`"),
        "{e}"
    );
    let e = err(&args.clone().with("pool_mode", "max"));
    assert!(e.contains("unknown input `pool_mode`"), "{e}");
    let e = err(&args.clone().with("scale", "big"));
    assert!(e.contains("`scale` must be a number, got a string"), "{e}");
    let e = err(&args.clone().with("mask", 1.0));
    assert!(e.contains("`mask` must be a tensor"), "{e}");
    // A single-input module takes `input` and nothing else.
    let net = net(&dev());
    let x = f(vec![0.5; 6], &[2, 3]);
    let out = forward_with(&net, &Inputs::single(&x)).unwrap();
    assert_eq!(
        out["output"].to_vec_f32().unwrap(),
        unidl_tensor::module::forward(&net, &x)
            .unwrap()
            .to_vec_f32()
            .unwrap()
    );
    let e = forward_with(&net, &Inputs::single(&x).with("scale", 2.0))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown input `scale`; this module takes `input`"),
        "{e}"
    );
}

#[test]
fn state_dict_shows_the_running_statistics_of_the_last_training_forward() {
    // Burn's RunningState keeps a training forward's update aside until it
    // syncs; the state dict (the checkpoint's content) must not lag behind
    let d = dev();
    let ad = d.clone().autodiff();
    let m = net(&d).fork(&ad).train();
    let x: BT<2> = BT::from_data(
        burn::tensor::TensorData::new(vec![1.0f32, 2.0, 3.0, -1.0, 0.5, 4.0], [2, 3]),
        &ad,
    );
    let _ = m.forward_dyn(&Tensor::from_burn(x).unwrap()).unwrap();
    let before = net(&d).state_dict();
    let after = m.state_dict();
    let mean = |sd: &unidl_tensor::module::StateDict| -> Vec<f32> {
        sd["norm.running_mean"].to_vec_f32().unwrap()
    };
    assert_eq!(mean(&before), vec![0.0; 4]);
    assert!(
        mean(&after).iter().any(|&v| v != 0.0),
        "running mean not updated in the state dict: {:?}",
        mean(&after)
    );
    let buffers = m.get_buffers();
    assert_eq!(
        buffers[0].1.to_vec_f32().unwrap(),
        mean(&after),
        "get_buffers and state_dict agree"
    );
}

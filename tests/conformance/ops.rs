//! Tensor operations against the reference, on every back-end.

use serde_json::Value;
use unidl_backend::{BackendError, BackendKind, DType, Device};
use unidl_tensor::{Axes, Idx, Tensor, TensorError};

use crate::reference::{self, Enc, OpCase, values_of};
use crate::{backends, max_err, tolerance};

fn parse_items(v: &Value) -> Vec<Idx> {
    let opt = |x: &Value| x.as_i64().map(|i| i as isize);
    v.as_array()
        .unwrap()
        .iter()
        .map(|it| {
            let a = it.as_array().unwrap();
            match a[0].as_str().unwrap() {
                "at" => Idx::At(a[1].as_i64().unwrap() as isize),
                "full" => Idx::Full,
                "new" => Idx::NewAxis,
                "ellipsis" => Idx::Ellipsis,
                "slice" => Idx::Slice {
                    start: opt(&a[1]),
                    stop: opt(&a[2]),
                    step: a[3].as_i64().unwrap() as isize,
                },
                other => panic!("unknown index item {other}"),
            }
        })
        .collect()
}

fn isizes(v: &Value) -> Vec<isize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap() as isize)
        .collect()
}

/// Runs one case; several outputs for split/chunk.
fn run(case: &OpCase, device: &Device) -> unidl_tensor::Result<Vec<Tensor>> {
    let ins = case
        .inputs
        .iter()
        .map(|e| e.tensor(device))
        .collect::<unidl_tensor::Result<Vec<_>>>()?;
    let a = &ins[0];
    let args = &case.args;
    let dims = || args.get("dims").filter(|d| !d.is_null()).map(isizes);
    let keep = || {
        args.get("keepdim")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let one = |t: unidl_tensor::Result<Tensor>| t.map(|t| vec![t]);
    match case.op.as_str() {
        "neg" => one(a.neg()),
        "abs" => one(a.abs()),
        "square" => one(a.square()),
        "sqrt" => one(a.sqrt()),
        "exp" => one(a.exp()),
        "log" => one(a.log()),
        "sin" => one(a.sin()),
        "cos" => one(a.cos()),
        "tan" => one(a.tan()),
        "asin" => one(a.asin()),
        "acos" => one(a.acos()),
        "atan" => one(a.atan()),
        "sinh" => one(a.sinh()),
        "cosh" => one(a.cosh()),
        "tanh" => one(a.tanh()),
        "sigmoid" => one(a.sigmoid()),
        "relu" => one(a.relu()),
        "gelu" => one(a.gelu()),
        "floor" => one(a.floor()),
        "ceil" => one(a.ceil()),
        "conj" => one(a.conj()),
        "add" => one(a.add(&ins[1])),
        "sub" => one(a.sub(&ins[1])),
        "mul" => one(a.mul(&ins[1])),
        "div" => one(a.div(&ins[1])),
        "pow" => one(a.pow(&ins[1])),
        "atan2" => one(a.atan2(&ins[1])),
        "gt" => one(a.gt(&ins[1])),
        "ge" => one(a.ge(&ins[1])),
        "lt" => one(a.lt(&ins[1])),
        "le" => one(a.le(&ins[1])),
        "eq" => one(a.eq(&ins[1])),
        "ne" => one(a.ne(&ins[1])),
        "logical_and" => one(a.logical_and(&ins[1])),
        "logical_or" => one(a.logical_or(&ins[1])),
        "logical_xor" => one(a.logical_xor(&ins[1])),
        "logical_not" => one(a.logical_not()),
        "sum" | "mean" | "max" | "min" => {
            let d = dims();
            let axes = d.as_deref().map_or(Axes::All, Axes::Dims);
            one(match case.op.as_str() {
                "sum" => a.sum(axes, keep()),
                "mean" => a.mean(axes, keep()),
                "max" => a.max(axes, keep()),
                _ => a.min(axes, keep()),
            })
        }
        "argmax" | "argmin" => {
            let dim = args["dim"].as_i64().map(|d| d as isize);
            one(if case.op == "argmax" {
                a.argmax(dim, keep())
            } else {
                a.argmin(dim, keep())
            })
        }
        "softmax" => one(a.softmax(args["dim"].as_i64().unwrap() as isize)),
        "log_softmax" => one(a.log_softmax(args["dim"].as_i64().unwrap() as isize)),
        "matmul" => one(a.matmul(&ins[1])),
        "reshape" => one(unidl_tensor::reshape(a, &isizes(&args["shape"]))),
        "permute" => one(unidl_tensor::permute(a, &isizes(&args["dims"]))),
        "transpose" => one(a.transpose(
            args["d0"].as_i64().unwrap() as isize,
            args["d1"].as_i64().unwrap() as isize,
        )),
        "index" => one(unidl_tensor::index(a, &parse_items(&args["items"]))),
        "permute_index" => one(a
            .permute(&isizes(&args["dims"]))
            .and_then(|p| p.index(&parse_items(&args["items"])))),
        "concat" => one(Tensor::concat(&ins, args["dim"].as_i64().unwrap() as isize)),
        "stack" => one(Tensor::stack(&ins, args["dim"].as_i64().unwrap() as isize)),
        "split" => a.split(
            args["size"].as_u64().unwrap() as usize,
            args["dim"].as_i64().unwrap() as isize,
        ),
        "chunk" => a.chunk(
            args["chunks"].as_u64().unwrap() as usize,
            args["dim"].as_i64().unwrap() as isize,
        ),
        "squeeze" => one(a.squeeze(args["dim"].as_i64().map(|d| d as isize))),
        "unsqueeze" => one(a.unsqueeze(args["dim"].as_i64().unwrap() as isize)),
        "flatten" => one(a.flatten(
            args["start"].as_i64().unwrap() as isize,
            args["end"].as_i64().unwrap() as isize,
        )),
        "cast" => one(a.to_dtype(DType::parse(args["dtype"].as_str().unwrap()).unwrap())),
        other => panic!("conformance case uses unknown op `{other}`"),
    }
}

fn expected(case: &OpCase) -> Vec<Enc> {
    match &case.output {
        Value::Array(list) => list
            .iter()
            .map(|v| serde_json::from_value(v.clone()).unwrap())
            .collect(),
        v => vec![serde_json::from_value(v.clone()).unwrap()],
    }
}

fn check(
    got: &[Tensor],
    want: &[Vec<f64>],
    shapes: &[Vec<usize>],
    dtypes: Option<&[String]>,
    tol: f64,
) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{} outputs, expected {}", got.len(), want.len()));
    }
    for (i, t) in got.iter().enumerate() {
        if t.shape() != shapes[i].as_slice() {
            return Err(format!(
                "output {i}: shape {:?}, expected {:?}",
                t.shape(),
                shapes[i]
            ));
        }
        if let Some(d) = dtypes {
            let want_dt = DType::parse(&d[i]).unwrap();
            // Reference float64 never appears; int64 must come back int64, bool as bool.
            if t.dtype() != want_dt {
                return Err(format!(
                    "output {i}: dtype {}, expected {want_dt}",
                    t.dtype()
                ));
            }
        }
        let err = max_err(&values_of(t), &want[i])?;
        if err > tol {
            return Err(format!("output {i}: max error {err:.2e} > {tol:.0e}"));
        }
    }
    Ok(())
}

#[test]
fn every_tensor_op_matches_pytorch_and_flex_on_every_backend() {
    let reference = reference::load();
    println!("reference values from torch {}", reference.torch);
    let backends = backends();
    let flex = Device::flex();
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in &reference.cases {
        let exp = expected(case);
        let want: Vec<Vec<f64>> = exp.iter().map(Enc::values).collect();
        let shapes: Vec<Vec<usize>> = exp.iter().map(|e| e.shape.clone()).collect();
        let dtypes: Vec<String> = exp.iter().map(|e| e.dtype.clone()).collect();
        // flex against PyTorch
        let flex_out = match run(case, &flex) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("{} on flex: error {e}", case.name));
                continue;
            }
        };
        if let Err(e) = check(&flex_out, &want, &shapes, Some(&dtypes), 1e-5) {
            failures.push(format!("{} on flex vs torch: {e}", case.name));
        }
        checked += 1;
        // every other back-end against flex
        let flex_vals: Vec<Vec<f64>> = flex_out.iter().map(values_of).collect();
        for (kind, device) in &backends {
            if *kind == BackendKind::Flex {
                continue;
            }
            match run(case, device) {
                Ok(out) => {
                    if let Err(e) = check(&out, &flex_vals, &shapes, None, tolerance(*kind)) {
                        failures.push(format!("{} on {kind} vs flex: {e}", case.name));
                    }
                    checked += 1;
                }
                Err(TensorError::Backend(BackendError::Unsupported { op, dtype, .. })) => {
                    let report = unidl_backend::report_for(*kind);
                    assert!(
                        !report.dtypes.contains(&dtype),
                        "{kind} claims {dtype} but {op} refused it"
                    );
                    println!(
                        "{}: {kind} lacks {dtype} ({op}): typed error, as its capability report says",
                        case.name
                    );
                }
                Err(e) => failures.push(format!("{} on {kind}: error {e}", case.name)),
            }
        }
    }
    println!("checked {checked} (case, back-end) pairs");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_backend_reproduces_random_streams_from_a_seed() {
    let _rng = crate::rng_guard();
    for (kind, device) in backends() {
        let draw = || {
            unidl_backend::seed(&device, 1234);
            let a = Tensor::rand(&[64], &device).unwrap().to_vec_f64().unwrap();
            let b = Tensor::randn(&[64], &device).unwrap().to_vec_f64().unwrap();
            let c = Tensor::bernoulli(0.3, &[64], &device)
                .unwrap()
                .to_vec_f64()
                .unwrap();
            let d = Tensor::randint(0, 10, &[64], &device)
                .unwrap()
                .to_vec_i64()
                .unwrap();
            (a, b, c, d)
        };
        let first = draw();
        let second = draw();
        assert_eq!(first, second, "{kind}: same seed gave different samples");
        assert!(
            first.0.iter().all(|x| (0.0..1.0).contains(x)),
            "{kind}: rand outside [0,1)"
        );
        assert!(
            first.3.iter().all(|x| (0..10).contains(x)),
            "{kind}: randint outside [0,10)"
        );
        assert!(
            first.2.iter().all(|x| *x == 0.0 || *x == 1.0),
            "{kind}: bernoulli not 0/1"
        );
        let mean: f64 = first.1.iter().sum::<f64>() / 64.0;
        assert!(mean.abs() < 0.5, "{kind}: randn mean {mean}");
    }
}

#[test]
fn strings_and_every_dtype_initialise_on_every_backend() {
    for (kind, device) in backends() {
        let s = unidl_tensor::initialize(
            vec![vec!["a", "b", "c"], vec!["d", "e", "f"]],
            None,
            &device,
        )
        .unwrap();
        let t = s
            .permute(&[1, 0])
            .unwrap()
            .index(&[Idx::range(1, 3), Idx::At(-1)])
            .unwrap();
        assert_eq!(t.to_strings().unwrap(), vec!["e", "f"], "{kind}");
        let mask = s
            .eq(&unidl_tensor::initialize(vec!["a", "e", "x"], None, &device).unwrap())
            .unwrap();
        assert_eq!(
            mask.to_vec_bool().unwrap(),
            vec![true, false, false, false, true, false],
            "{kind}"
        );
        assert!(
            matches!(s.add(&s), Err(TensorError::DTypeOp { .. })),
            "{kind}: string arithmetic must be a typed error"
        );
        let report = unidl_backend::report_for(kind);
        for dtype in DType::ALL {
            let r = unidl_tensor::initialize(vec![1, 0, 2], Some(dtype), &device);
            match (dtype, r) {
                (DType::String, Err(TensorError::BadData { .. })) => {}
                (_, Ok(t)) => {
                    assert!(
                        report.dtypes.contains(&dtype),
                        "{kind} made {dtype} though its report lacks it"
                    );
                    assert_eq!(t.dtype(), dtype, "{kind}");
                    if dtype != DType::Complex64 {
                        let want: Vec<i64> = if dtype == DType::Bool {
                            vec![1, 0, 1]
                        } else {
                            vec![1, 0, 2]
                        };
                        assert_eq!(t.to_vec_i64().unwrap(), want, "{kind} {dtype}");
                    }
                }
                (_, Err(TensorError::Backend(BackendError::Unsupported { .. }))) => {
                    assert!(
                        !report.dtypes.contains(&dtype),
                        "{kind} refused {dtype} though its report lists it"
                    );
                }
                (_, Err(e)) => panic!("{kind} {dtype}: unexpected error {e}"),
            }
        }
    }
}

//! Reading `reference.json`.

use serde::Deserialize;
use serde_json::Value;
use unidl_backend::{DType, Device};
use unidl_tensor::{Complex, Tensor};

/// One encoded tensor.
#[derive(Debug, Clone, Deserialize)]
pub struct Enc {
    pub shape: Vec<usize>,
    pub dtype: String,
    pub data: Vec<Value>,
}

impl Enc {
    /// Builds the tensor on `device`.
    pub fn tensor(&self, device: &Device) -> unidl_tensor::Result<Tensor> {
        let dtype = DType::parse(&self.dtype).expect("known dtype in reference file");
        match dtype {
            DType::Complex64 => {
                let v: Vec<Complex> = self
                    .data
                    .iter()
                    .map(|p| {
                        Complex::new(p[0].as_f64().unwrap() as f32, p[1].as_f64().unwrap() as f32)
                    })
                    .collect();
                Tensor::from_complex(&v, &self.shape, device)
            }
            DType::Bool => {
                let v: Vec<i64> = self
                    .data
                    .iter()
                    .map(|x| i64::from(x.as_bool().unwrap()))
                    .collect();
                Tensor::from_i64(v, &self.shape, device)?.to_dtype(DType::Bool)
            }
            d if d.is_int() => {
                let v: Vec<i64> = self.data.iter().map(|x| x.as_i64().unwrap()).collect();
                Tensor::from_i64(v, &self.shape, device)?.to_dtype(d)
            }
            _ => {
                let v: Vec<f32> = self
                    .data
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect();
                Tensor::from_f32(v, &self.shape, device)
            }
        }
    }

    /// Flat values as f64 (complex as re, im interleaved; bool as 0/1).
    pub fn values(&self) -> Vec<f64> {
        let mut out = Vec::new();
        for x in &self.data {
            match x {
                Value::Array(p) => {
                    out.push(p[0].as_f64().unwrap());
                    out.push(p[1].as_f64().unwrap());
                }
                Value::Bool(b) => out.push(f64::from(u8::from(*b))),
                other => out.push(other.as_f64().unwrap()),
            }
        }
        out
    }
}

/// Flat values of a tensor in the same layout as [`Enc::values`].
pub fn values_of(t: &Tensor) -> Vec<f64> {
    if t.dtype() == DType::Complex64 {
        t.to_complex()
            .unwrap()
            .iter()
            .flat_map(|c| [c.re as f64, c.im as f64])
            .collect()
    } else {
        t.to_vec_f64().unwrap()
    }
}

/// One op case.
#[derive(Debug, Clone, Deserialize)]
pub struct OpCase {
    pub name: String,
    pub op: String,
    pub inputs: Vec<Enc>,
    pub args: Value,
    pub output: Value,
}

/// One module case.
#[derive(Debug, Clone, Deserialize)]
pub struct ModuleCase {
    pub name: String,
    pub kind: String,
    pub config: Value,
    pub train: bool,
    pub state: std::collections::BTreeMap<String, Enc>,
    pub input: Enc,
    pub output: Enc,
    pub grad_output: Enc,
    pub input_grad: Option<Enc>,
    pub param_grads: std::collections::BTreeMap<String, Enc>,
}

/// The whole file.
#[derive(Debug, Deserialize)]
pub struct Reference {
    pub torch: String,
    pub cases: Vec<OpCase>,
    pub modules: Vec<ModuleCase>,
}

/// Loads `reference.json` (panics with the path if it is missing: it is committed).
pub fn load() -> Reference {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

//! Element-wise math, comparisons, logic, reductions, activations and matmul
//! (§6.1.1-b/c, T-g), with NumPy broadcasting and PyTorch-style type promotion.

use std::sync::Arc;

use burn::tensor::activation;
use burn::tensor::{Bool, Float, FloatDType, Int, IntDType};
use unidl_backend::DType;

use crate::error::{Result, TensorError};
use crate::shape::{broadcast, norm_dim, offset, pad};
use crate::tensor::{Raw, Storage, Tensor, float_dtype};

/// (re, im) parts of a complex tensor.
type Parts = (Raw<Float>, Raw<Float>);

/// Operands after promotion to a common kind and broadcasting to a common shape.
#[allow(clippy::large_enum_variant)] // short-lived, never stored
enum Pair {
    Float(Raw<Float>, Raw<Float>),
    Int(Raw<Int>, Raw<Int>),
    Complex(Parts, Parts),
}

fn float_rank(d: DType) -> u8 {
    match d {
        DType::Float64 => 3,
        DType::Float32 => 2,
        _ => 1,
    }
}

impl Tensor {
    fn expand_to(&self, out: &[usize]) -> Result<Storage> {
        if self.shape == out {
            return Ok(self.storage.clone());
        }
        let p = pad(out)?;
        Ok(
            crate::tensor::map_raw!(self.storage.clone(), |t| t.expand(p), s @ Storage::Str(..) => s),
        )
    }

    fn complex_parts(&self, op: &str) -> Result<Parts> {
        match &self.storage {
            Storage::Complex(re, im) => Ok((re.clone(), im.clone())),
            _ => {
                let re = self.float_raw(op)?.cast(FloatDType::F32);
                let im = re.zeros_like();
                Ok((re, im))
            }
        }
    }

    /// Promotes and broadcasts two operands. Strings are a typed error.
    fn pair(&self, other: &Tensor, op: &str) -> Result<(Pair, Vec<usize>)> {
        let out = broadcast(op, &self.shape, &other.shape)?;
        let (a, b) = (self.expand_to(&out)?, other.expand_to(&out)?);
        let (ta, tb) = (self.dtype(), other.dtype());
        for t in [ta, tb] {
            if t == DType::String {
                return Err(TensorError::dtype_op(op, t));
            }
        }
        let a = Tensor::new(out.clone(), a);
        let b = Tensor::new(out.clone(), b);
        let pair = if ta == DType::Complex64 || tb == DType::Complex64 {
            Pair::Complex(a.complex_parts(op)?, b.complex_parts(op)?)
        } else if ta.is_float() || tb.is_float() {
            let target = match (ta.is_float(), tb.is_float()) {
                (true, true) if float_rank(tb) > float_rank(ta) => tb,
                (true, _) => ta,
                _ => tb,
            };
            let fa = a.float_raw(op)?.cast(float_dtype(target));
            let fb = b.float_raw(op)?.cast(float_dtype(target));
            Pair::Float(fa, fb)
        } else {
            let ia = a.int_raw()?;
            let ib = b.int_raw()?;
            if ta == tb {
                Pair::Int(ia, ib)
            } else {
                Pair::Int(ia.cast(IntDType::I64), ib.cast(IntDType::I64))
            }
        };
        Ok((pair, out))
    }

    fn int_raw(&self) -> Result<Raw<Int>> {
        match &self.storage {
            Storage::Int(t) => Ok(t.clone()),
            Storage::Bool(t) => Ok(t.clone().int().cast(IntDType::I64)),
            _ => Err(TensorError::dtype_op("integer op", self.dtype())),
        }
    }

    fn arith(
        &self,
        other: &Tensor,
        op: &str,
        f: fn(Raw<Float>, Raw<Float>) -> Raw<Float>,
        i: fn(Raw<Int>, Raw<Int>) -> Raw<Int>,
        c: fn(Parts, Parts) -> Parts,
    ) -> Result<Tensor> {
        let (pair, out) = self.pair(other, op)?;
        let storage = match pair {
            Pair::Float(a, b) => Storage::Float(f(a, b)),
            Pair::Int(a, b) => Storage::Int(i(a, b)),
            Pair::Complex(a, b) => {
                let (re, im) = c(a, b);
                Storage::Complex(re, im)
            }
        };
        Ok(Tensor::new(out, storage))
    }

    /// Element-wise `self + other` with broadcasting.
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        self.arith(
            other,
            "add",
            |a, b| a + b,
            |a, b| a + b,
            |(a, b), (c, d)| (a + c, b + d),
        )
    }

    /// Element-wise `self - other` with broadcasting.
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        self.arith(
            other,
            "sub",
            |a, b| a - b,
            |a, b| a - b,
            |(a, b), (c, d)| (a - c, b - d),
        )
    }

    /// Element-wise `self * other` with broadcasting.
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        self.arith(
            other,
            "mul",
            |a, b| a * b,
            |a, b| a * b,
            |(a, b), (c, d)| (a.clone() * c.clone() - b.clone() * d.clone(), a * d + b * c),
        )
    }

    /// Element-wise true division (integers divide as float32, as in PyTorch).
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        let (a, b) =
            if self.dtype().is_int() && other.dtype().is_int() || self.dtype() == DType::Bool {
                (self.to_dtype(DType::Float32)?, other.clone())
            } else {
                (self.clone(), other.clone())
            };
        a.arith(
            &b,
            "div",
            |a, b| a / b,
            |a, b| a / b,
            |(a, b), (c, d)| {
                let den = c.clone() * c.clone() + d.clone() * d.clone();
                (
                    (a.clone() * c.clone() + b.clone() * d.clone()) / den.clone(),
                    (b * c - a * d) / den,
                )
            },
        )
    }

    /// Element-wise power `self ** other` (float).
    pub fn pow(&self, other: &Tensor) -> Result<Tensor> {
        let a = self.to_floating("pow")?;
        let b = other.to_floating("pow")?;
        a.arith(&b, "pow", |a, b| a.powf(b), |a, _| a, |_, _| unreachable!())
            .and_then(|t| t.no_complex("pow", [self, other]))
    }

    /// Element-wise power by a scalar.
    pub fn pow_scalar(&self, exponent: f64) -> Result<Tensor> {
        self.unary_float("pow", move |t| t.powf_scalar(exponent))
    }

    /// Element-wise `atan2(self, other)`.
    pub fn atan2(&self, other: &Tensor) -> Result<Tensor> {
        let a = self.to_floating("atan2")?;
        let b = other.to_floating("atan2")?;
        a.arith(
            &b,
            "atan2",
            |a, b| a.atan2(b),
            |a, _| a,
            |_, _| unreachable!(),
        )
        .and_then(|t| t.no_complex("atan2", [self, other]))
    }

    fn no_complex(self, op: &str, inputs: [&Tensor; 2]) -> Result<Tensor> {
        for t in inputs {
            if t.dtype() == DType::Complex64 {
                return Err(TensorError::dtype_op(op, DType::Complex64));
            }
        }
        Ok(self)
    }

    fn to_floating(&self, op: &str) -> Result<Tensor> {
        match self.dtype() {
            DType::Complex64 | DType::String => Err(TensorError::dtype_op(op, self.dtype())),
            d if d.is_float() => Ok(self.clone()),
            _ => self.to_dtype(DType::Float32),
        }
    }

    /// `self + value`.
    pub fn add_scalar(&self, value: f64) -> Result<Tensor> {
        self.add(&self.scalar_like(value)?)
    }

    /// `self * value`.
    pub fn mul_scalar(&self, value: f64) -> Result<Tensor> {
        self.mul(&self.scalar_like(value)?)
    }

    fn scalar_like(&self, value: f64) -> Result<Tensor> {
        let dtype = match self.dtype() {
            d if d.is_float() => d,
            DType::Complex64 => DType::Float32,
            d if d.is_int() && value.fract() == 0.0 => d,
            _ => DType::Float32,
        };
        Tensor::full(&[], value, dtype, &self.device())
    }

    // ----- unary math -----

    fn unary_float(&self, op: &str, f: impl FnOnce(Raw<Float>) -> Raw<Float>) -> Result<Tensor> {
        let t = self.float_raw(op)?;
        Ok(Tensor::new(self.shape.clone(), Storage::Float(f(t))))
    }

    /// Negation (numeric and complex).
    pub fn neg(&self) -> Result<Tensor> {
        let storage = match &self.storage {
            Storage::Float(t) => Storage::Float(-t.clone()),
            Storage::Int(t) => Storage::Int(-t.clone()),
            Storage::Complex(re, im) => Storage::Complex(-re.clone(), -im.clone()),
            _ => return Err(TensorError::dtype_op("neg", self.dtype())),
        };
        Ok(Tensor::new(self.shape.clone(), storage))
    }

    /// Absolute value; the modulus for complex tensors (float32 result).
    pub fn abs(&self) -> Result<Tensor> {
        let storage = match &self.storage {
            Storage::Float(t) => Storage::Float(t.clone().abs()),
            Storage::Int(t) => Storage::Int(t.clone().abs()),
            Storage::Complex(re, im) => {
                Storage::Float((re.clone().square() + im.clone().square()).sqrt())
            }
            _ => return Err(TensorError::dtype_op("abs", self.dtype())),
        };
        Ok(Tensor::new(self.shape.clone(), storage))
    }

    /// Complex conjugate (identity for real tensors).
    pub fn conj(&self) -> Result<Tensor> {
        match &self.storage {
            Storage::Complex(re, im) => Ok(Tensor::new(
                self.shape.clone(),
                Storage::Complex(re.clone(), -im.clone()),
            )),
            Storage::Str(..) => Err(TensorError::dtype_op("conj", DType::String)),
            _ => Ok(self.clone()),
        }
    }

    /// Real part of a complex tensor (float32); real tensors are returned as they are.
    pub fn real(&self) -> Result<Tensor> {
        match &self.storage {
            Storage::Complex(re, _) => {
                Ok(Tensor::new(self.shape.clone(), Storage::Float(re.clone())))
            }
            Storage::Str(..) => Err(TensorError::dtype_op("real", DType::String)),
            _ => Ok(self.clone()),
        }
    }

    /// Imaginary part of a complex tensor (float32); zeros for real tensors.
    pub fn imag(&self) -> Result<Tensor> {
        match &self.storage {
            Storage::Complex(_, im) => {
                Ok(Tensor::new(self.shape.clone(), Storage::Float(im.clone())))
            }
            _ => self.to_floating("imag")?.zeros_like(),
        }
    }

    /// `self * self` (keeps integer dtypes).
    pub fn square(&self) -> Result<Tensor> {
        match &self.storage {
            Storage::Int(t) => Ok(Tensor::new(
                self.shape.clone(),
                Storage::Int(t.clone() * t.clone()),
            )),
            Storage::Complex(..) => self.mul(self),
            _ => self.unary_float("square", |t| t.square()),
        }
    }
}

macro_rules! float_unary {
    ($($name:ident => $method:ident, $doc:literal;)*) => {
        impl Tensor {
            $(
                #[doc = $doc]
                #[doc = ""]
                #[doc = "Integer and bool inputs are computed in float32."]
                pub fn $name(&self) -> Result<Tensor> {
                    self.unary_float(stringify!($name), |t| t.$method())
                }
            )*
        }
    };
}

float_unary! {
    sqrt => sqrt, "Square root.";
    exp => exp, "Exponential.";
    log => log, "Natural logarithm.";
    sin => sin, "Sine.";
    cos => cos, "Cosine.";
    tan => tan, "Tangent.";
    asin => asin, "Arc sine.";
    acos => acos, "Arc cosine.";
    atan => atan, "Arc tangent.";
    sinh => sinh, "Hyperbolic sine.";
    cosh => cosh, "Hyperbolic cosine.";
    tanh => tanh, "Hyperbolic tangent (also the Tanh activation).";
    floor => floor, "Round down.";
    ceil => ceil, "Round up.";
}

// ----- comparisons and logic -----

impl Tensor {
    fn compare(
        &self,
        other: &Tensor,
        op: &str,
        f: fn(Raw<Float>, Raw<Float>) -> Raw<Bool>,
        i: fn(Raw<Int>, Raw<Int>) -> Raw<Bool>,
    ) -> Result<Tensor> {
        let (pair, out) = self.pair(other, op)?;
        let b = match pair {
            Pair::Float(a, b) => f(a, b),
            Pair::Int(a, b) => i(a, b),
            Pair::Complex(..) => return Err(TensorError::dtype_op(op, DType::Complex64)),
        };
        Ok(Tensor::new(out, Storage::Bool(b)))
    }

    /// `self > other` element-wise.
    pub fn gt(&self, other: &Tensor) -> Result<Tensor> {
        self.compare(other, "gt", |a, b| a.greater(b), |a, b| a.greater(b))
    }
    /// `self >= other` element-wise.
    pub fn ge(&self, other: &Tensor) -> Result<Tensor> {
        self.compare(
            other,
            "ge",
            |a, b| a.greater_equal(b),
            |a, b| a.greater_equal(b),
        )
    }
    /// `self < other` element-wise.
    pub fn lt(&self, other: &Tensor) -> Result<Tensor> {
        self.compare(other, "lt", |a, b| a.lower(b), |a, b| a.lower(b))
    }
    /// `self <= other` element-wise.
    pub fn le(&self, other: &Tensor) -> Result<Tensor> {
        self.compare(
            other,
            "le",
            |a, b| a.lower_equal(b),
            |a, b| a.lower_equal(b),
        )
    }

    /// `self == other` element-wise (also for strings and complex numbers).
    pub fn eq(&self, other: &Tensor) -> Result<Tensor> {
        if let Some(t) = self.string_compare(other, "eq", true)? {
            return Ok(t);
        }
        if self.dtype() == DType::Complex64 || other.dtype() == DType::Complex64 {
            let (pair, out) = self.pair(other, "eq")?;
            let Pair::Complex((a, b), (c, d)) = pair else {
                unreachable!()
            };
            let m = a.equal(c).int() * b.equal(d).int();
            return Ok(Tensor::new(out, Storage::Bool(m.bool())));
        }
        self.compare(other, "eq", |a, b| a.equal(b), |a, b| a.equal(b))
    }

    /// `self != other` element-wise (also for strings and complex numbers).
    pub fn ne(&self, other: &Tensor) -> Result<Tensor> {
        if let Some(t) = self.string_compare(other, "ne", false)? {
            return Ok(t);
        }
        self.eq(other)?.logical_not()
    }

    fn string_compare(&self, other: &Tensor, op: &str, want_equal: bool) -> Result<Option<Tensor>> {
        let (Storage::Str(a, dev), Storage::Str(b, _)) = (&self.storage, &other.storage) else {
            if self.dtype() == DType::String || other.dtype() == DType::String {
                let t = if self.dtype() == DType::String {
                    other.dtype()
                } else {
                    self.dtype()
                };
                return Err(TensorError::invalid(
                    op,
                    format!("cannot compare strings with {t}"),
                ));
            }
            return Ok(None);
        };
        let out = broadcast(op, &self.shape, &other.shape)?;
        let a = broadcast_host(a, &self.shape, &out);
        let b = broadcast_host(b, &other.shape, &out);
        let mask: Vec<bool> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x == y) == want_equal)
            .collect();
        let raw = Raw::<Bool>::from_data(burn::tensor::TensorData::new(mask, pad(&out)?), dev);
        Ok(Some(Tensor::new(out, Storage::Bool(raw))))
    }

    fn logic(
        &self,
        other: &Tensor,
        op: &str,
        f: fn(Raw<Bool>, Raw<Bool>) -> Raw<Bool>,
    ) -> Result<Tensor> {
        let out = broadcast(op, &self.shape, &other.shape)?;
        let a = Tensor::new(out.clone(), self.expand_to(&out)?).bool_raw(op)?;
        let b = Tensor::new(out.clone(), other.expand_to(&out)?).bool_raw(op)?;
        Ok(Tensor::new(out, Storage::Bool(f(a, b))))
    }

    /// Logical and (non-zero is true).
    pub fn logical_and(&self, other: &Tensor) -> Result<Tensor> {
        self.logic(other, "logical_and", |a, b| a.bool_and(b))
    }
    /// Logical or (non-zero is true).
    pub fn logical_or(&self, other: &Tensor) -> Result<Tensor> {
        self.logic(other, "logical_or", |a, b| a.bool_or(b))
    }
    /// Logical exclusive or (non-zero is true).
    pub fn logical_xor(&self, other: &Tensor) -> Result<Tensor> {
        self.logic(other, "logical_xor", |a, b| a.bool_xor(b))
    }
    /// Logical not (non-zero is true).
    pub fn logical_not(&self) -> Result<Tensor> {
        Ok(Tensor::new(
            self.shape.clone(),
            Storage::Bool(self.bool_raw("logical_not")?.bool_not()),
        ))
    }
}

/// Broadcasts host values from `shape` to `out`.
fn broadcast_host(v: &Arc<Vec<String>>, shape: &[usize], out: &[usize]) -> Vec<String> {
    let lead = out.len() - shape.len();
    let full: Vec<usize> = (0..out.len())
        .map(|i| if i < lead { 1 } else { shape[i - lead] })
        .collect();
    let picks: Vec<Vec<usize>> = out
        .iter()
        .zip(&full)
        .map(|(&o, &s)| if s == 1 { vec![0; o] } else { (0..o).collect() })
        .collect();
    crate::shape::host_gather(v, &full, &picks)
}

// ----- reductions -----

/// Which axes a reduction runs over.
#[derive(Debug, Clone, Copy)]
pub enum Axes<'a> {
    /// Every axis (result is a scalar unless `keepdim`).
    All,
    /// The given axes (negative allowed).
    Dims(&'a [isize]),
}

#[derive(Clone, Copy)]
enum Red {
    Sum,
    Mean,
    Max,
    Min,
}

impl Tensor {
    fn reduce_axes(&self, op: &str, axes: Axes) -> Result<Vec<usize>> {
        match axes {
            Axes::All => Ok((0..self.rank()).collect()),
            Axes::Dims(d) => {
                let mut v = Vec::new();
                for &x in d {
                    let n = norm_dim(op, x, self.rank(), false)?;
                    if v.contains(&n) {
                        return Err(TensorError::invalid(
                            op,
                            format!("dimension {n} given twice"),
                        ));
                    }
                    v.push(n);
                }
                v.sort_unstable();
                Ok(v)
            }
        }
    }

    fn reduce(&self, op: &str, red: Red, axes: Axes, keepdim: bool) -> Result<Tensor> {
        let dims = self.reduce_axes(op, axes)?;
        if self.numel() == 0 {
            return Err(TensorError::invalid(
                op,
                format!("reduction of an empty tensor of shape {:?}", self.shape),
            ));
        }
        let off = offset(self.rank());
        let mut kept = self.shape.clone();
        for &d in &dims {
            kept[d] = 1;
        }
        let out_shape: Vec<usize> = if keepdim {
            kept
        } else {
            self.shape
                .iter()
                .enumerate()
                .filter(|(i, _)| !dims.contains(i))
                .map(|(_, &s)| s)
                .collect()
        };
        macro_rules! run {
            ($t:expr) => {{
                let mut t = $t;
                for &d in &dims {
                    t = match red {
                        Red::Sum => t.sum_dim(off + d),
                        Red::Mean => t.mean_dim(off + d),
                        Red::Max => t.max_dim(off + d),
                        Red::Min => t.min_dim(off + d),
                    };
                }
                t
            }};
        }
        let storage = match (&self.storage, red) {
            (Storage::Float(t), _) => Storage::Float(run!(t.clone())),
            (Storage::Int(t), Red::Mean) => {
                Storage::Float(run!(t.clone().float().cast(FloatDType::F32)))
            }
            (Storage::Int(t), _) => Storage::Int(run!(t.clone())),
            (Storage::Bool(t), Red::Mean) => {
                Storage::Float(run!(t.clone().float().cast(FloatDType::F32)))
            }
            (Storage::Bool(t), _) => Storage::Int(run!(t.clone().int().cast(IntDType::I64))),
            (Storage::Complex(re, im), Red::Sum | Red::Mean) => {
                Storage::Complex(run!(re.clone()), run!(im.clone()))
            }
            _ => return Err(TensorError::dtype_op(op, self.dtype())),
        };
        Tensor::from_storage(out_shape, storage)
    }

    /// Sum over `axes`.
    pub fn sum(&self, axes: Axes, keepdim: bool) -> Result<Tensor> {
        self.reduce("sum", Red::Sum, axes, keepdim)
    }
    /// Mean over `axes` (integers averaged in float32).
    pub fn mean(&self, axes: Axes, keepdim: bool) -> Result<Tensor> {
        self.reduce("mean", Red::Mean, axes, keepdim)
    }
    /// Maximum over `axes`.
    pub fn max(&self, axes: Axes, keepdim: bool) -> Result<Tensor> {
        self.reduce("max", Red::Max, axes, keepdim)
    }
    /// Minimum over `axes`.
    pub fn min(&self, axes: Axes, keepdim: bool) -> Result<Tensor> {
        self.reduce("min", Red::Min, axes, keepdim)
    }

    fn arg(&self, op: &str, dim: Option<isize>, keepdim: bool, max: bool) -> Result<Tensor> {
        if self.numel() == 0 {
            return Err(TensorError::invalid(op, "empty tensor"));
        }
        let (src, d) = match dim {
            None => (self.reshape(&[-1])?, 0),
            Some(d) => (self.clone(), norm_dim(op, d, self.rank(), false)?),
        };
        let off = offset(src.rank());
        let idx = match &src.storage {
            Storage::Float(t) => {
                if max {
                    t.clone().argmax(off + d)
                } else {
                    t.clone().argmin(off + d)
                }
            }
            Storage::Int(t) => {
                if max {
                    t.clone().argmax(off + d)
                } else {
                    t.clone().argmin(off + d)
                }
            }
            Storage::Bool(t) => {
                let t = t.clone().int();
                if max {
                    t.argmax(off + d)
                } else {
                    t.argmin(off + d)
                }
            }
            _ => return Err(TensorError::dtype_op(op, self.dtype())),
        };
        let idx = idx.cast(IntDType::I64);
        let mut shape = src.shape.clone();
        if src.rank() > 0 {
            shape[d] = 1;
        }
        let out = if keepdim && dim.is_some() {
            shape
        } else if dim.is_none() {
            if keepdim {
                vec![1; self.rank()]
            } else {
                vec![]
            }
        } else {
            shape
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != d)
                .map(|(_, &s)| s)
                .collect()
        };
        Tensor::from_storage(out, Storage::Int(idx))
    }

    /// Index of the maximum over `dim` (over the flattened tensor when `None`), int64.
    pub fn argmax(&self, dim: Option<isize>, keepdim: bool) -> Result<Tensor> {
        self.arg("argmax", dim, keepdim, true)
    }
    /// Index of the minimum over `dim` (over the flattened tensor when `None`), int64.
    pub fn argmin(&self, dim: Option<isize>, keepdim: bool) -> Result<Tensor> {
        self.arg("argmin", dim, keepdim, false)
    }

    // ----- activations (§6.1.1-c) -----

    /// Logistic sigmoid.
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary_float("sigmoid", activation::sigmoid)
    }
    /// Rectified linear unit (keeps integer dtypes).
    pub fn relu(&self) -> Result<Tensor> {
        match &self.storage {
            Storage::Int(t) => Ok(Tensor::new(
                self.shape.clone(),
                Storage::Int(t.clone().clamp_min(0)),
            )),
            _ => self.unary_float("relu", activation::relu),
        }
    }
    /// Gaussian error linear unit (exact, erf form).
    pub fn gelu(&self) -> Result<Tensor> {
        self.unary_float("gelu", activation::gelu)
    }
    /// Softmax along `dim`.
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        let d = offset(self.rank()) + norm_dim("softmax", dim, self.rank(), false)?;
        self.unary_float("softmax", |t| activation::softmax(t, d))
    }
    /// Log-softmax along `dim`.
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        let d = offset(self.rank()) + norm_dim("log_softmax", dim, self.rank(), false)?;
        self.unary_float("log_softmax", |t| activation::log_softmax(t, d))
    }

    // ----- matmul (§6.1.1-c) -----

    /// Matrix product with NumPy semantics: 1-D operands are promoted and the
    /// added axis removed; leading (batch) axes broadcast.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        if self.rank() == 0 || other.rank() == 0 {
            return Err(TensorError::invalid(
                "matmul",
                "both operands need rank >= 1",
            ));
        }
        let a = if self.rank() == 1 {
            self.reshape(&[1, -1])?
        } else {
            self.clone()
        };
        let b = if other.rank() == 1 {
            other.reshape(&[-1, 1])?
        } else {
            other.clone()
        };
        let (ra, rb) = (a.rank(), b.rank());
        let (m, k) = (a.shape[ra - 2], a.shape[ra - 1]);
        let (k2, n) = (b.shape[rb - 2], b.shape[rb - 1]);
        if k != k2 {
            return Err(TensorError::ShapeMismatch {
                op: "matmul".into(),
                lhs: self.shape.clone(),
                rhs: other.shape.clone(),
                detail: format!(" (inner dimensions {k} and {k2} differ)"),
            });
        }
        let batch = broadcast("matmul", &a.shape[..ra - 2], &b.shape[..rb - 2]).map_err(|_| {
            TensorError::ShapeMismatch {
                op: "matmul".into(),
                lhs: self.shape.clone(),
                rhs: other.shape.clone(),
                detail: " (batch dimensions do not broadcast)".into(),
            }
        })?;
        let mut sa = batch.clone();
        sa.extend([m, k]);
        let mut sb = batch.clone();
        sb.extend([k, n]);
        let a = Tensor::new(sa, a.expand_to(&[&batch[..], &[m, k]].concat())?);
        let b = Tensor::new(sb, b.expand_to(&[&batch[..], &[k, n]].concat())?);
        let (pair, _) = a.pair_same_shape(&b)?;
        let storage = match pair {
            Pair::Float(x, y) => Storage::Float(x.matmul(y)),
            Pair::Int(x, y) => Storage::Float(
                x.float()
                    .cast(FloatDType::F32)
                    .matmul(y.float().cast(FloatDType::F32)),
            ),
            Pair::Complex((a, b), (c, d)) => Storage::Complex(
                a.clone().matmul(c.clone()) - b.clone().matmul(d.clone()),
                a.matmul(d) + b.matmul(c),
            ),
        };
        let mut out = batch;
        if self.rank() > 1 {
            out.push(m);
        }
        if other.rank() > 1 {
            out.push(n);
        }
        Tensor::from_storage(out, storage)
    }

    /// Like `pair` but for operands whose shapes may differ only in the last two axes.
    fn pair_same_shape(&self, other: &Tensor) -> Result<(Pair, ())> {
        let (ta, tb) = (self.dtype(), other.dtype());
        if ta == DType::String || tb == DType::String {
            return Err(TensorError::dtype_op("matmul", DType::String));
        }
        let pair = if ta == DType::Complex64 || tb == DType::Complex64 {
            Pair::Complex(
                self.complex_parts("matmul")?,
                other.complex_parts("matmul")?,
            )
        } else if ta.is_float() || tb.is_float() {
            let target = if ta.is_float() && (!tb.is_float() || float_rank(ta) >= float_rank(tb)) {
                ta
            } else {
                tb
            };
            Pair::Float(
                self.float_raw("matmul")?.cast(float_dtype(target)),
                other.float_raw("matmul")?.cast(float_dtype(target)),
            )
        } else {
            Pair::Int(
                self.int_raw()?.cast(IntDType::I64),
                other.int_raw()?.cast(IntDType::I64),
            )
        };
        Ok((pair, ()))
    }
}

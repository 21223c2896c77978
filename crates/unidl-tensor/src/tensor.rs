//! The dynamic [`Tensor`]: rank and dtype known at run time (A.1).

use std::fmt;
use std::sync::Arc;

use burn::tensor::{Bool, Distribution, Float, Int, Tensor as BT, TensorData};
use unidl_backend::{DType, Device, require_dtype};

use crate::data::{Complex, Data, Flat, FlatValues, flatten};
use crate::error::{Result, TensorError};
use crate::shape::{MAX_RANK, pad, volume};

/// Burn storage: a rank-[`MAX_RANK`] tensor whose leading axes are 1.
pub type Raw<K = Float> = BT<MAX_RANK, K>;

/// Where the elements live (crate-internal; public only so that the sealed
/// [`BurnKind`] trait can name it).
#[doc(hidden)]
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // boxing would add an allocation to every tensor
pub enum Storage {
    /// Float dtypes.
    Float(Raw<Float>),
    /// Integer dtypes.
    Int(Raw<Int>),
    /// Bool.
    Bool(Raw<Bool>),
    /// (re, im), both float32.
    Complex(Raw<Float>, Raw<Float>),
    /// Row-major strings on the host; the device is where numeric results of
    /// string ops (e.g. equality masks) go.
    Str(Arc<Vec<String>>, Device),
}

/// Applies the same structural Burn operation to every device-held storage
/// kind (both parts of a complex tensor). Host strings are handled by the caller.
macro_rules! map_raw {
    ($st:expr, |$t:ident| $body:expr, $strs:pat => $on_str:expr) => {
        match $st {
            Storage::Float($t) => Storage::Float($body),
            Storage::Int($t) => Storage::Int($body),
            Storage::Bool($t) => Storage::Bool($body),
            Storage::Complex(re, im) => Storage::Complex(
                {
                    let $t = re;
                    $body
                },
                {
                    let $t = im;
                    $body
                },
            ),
            $strs => $on_str,
        }
    };
}
pub(crate) use map_raw;

/// A tensor of any rank (0 ..= 6) and any [`DType`], on any back-end.
///
/// Numeric tensors are Burn tensors on a [`Device`] and take part in autodiff
/// when created on an autodiff device; string tensors live on the host;
/// complex64 tensors are a pair of float32 tensors.
///
/// Convert to and from Burn's static `Tensor<D, K>` with [`Tensor::from_burn`]
/// and [`Tensor::into_burn`]: both are reshapes of the same buffer.
#[derive(Clone)]
pub struct Tensor {
    pub(crate) shape: Vec<usize>,
    pub(crate) storage: Storage,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor(shape={:?}, dtype={}", self.shape, self.dtype())?;
        if self.numel() <= 64 {
            match self.dtype() {
                DType::String => write!(f, ", data={:?}", self.to_strings().unwrap_or_default())?,
                DType::Complex64 => {
                    write!(f, ", data={:?}", self.to_complex().unwrap_or_default())?
                }
                _ => write!(f, ", data={:?}", self.to_vec_f64().unwrap_or_default())?,
            }
        }
        write!(f, ")")
    }
}

/// Burn tensor kinds that a [`Tensor`] can be converted to and from.
pub trait BurnKind: burn::tensor::kind::Basic + Sized {
    /// Wraps storage of this kind.
    #[doc(hidden)]
    fn wrap(raw: Raw<Self>) -> Storage;
    /// Unwraps storage of this kind.
    #[doc(hidden)]
    fn unwrap(s: Storage) -> Option<Raw<Self>>;
}

impl BurnKind for Float {
    fn wrap(raw: Raw<Self>) -> Storage {
        Storage::Float(raw)
    }
    fn unwrap(s: Storage) -> Option<Raw<Self>> {
        match s {
            Storage::Float(t) => Some(t),
            _ => None,
        }
    }
}
impl BurnKind for Int {
    fn wrap(raw: Raw<Self>) -> Storage {
        Storage::Int(raw)
    }
    fn unwrap(s: Storage) -> Option<Raw<Self>> {
        match s {
            Storage::Int(t) => Some(t),
            _ => None,
        }
    }
}
impl BurnKind for Bool {
    fn wrap(raw: Raw<Self>) -> Storage {
        Storage::Bool(raw)
    }
    fn unwrap(s: Storage) -> Option<Raw<Self>> {
        match s {
            Storage::Bool(t) => Some(t),
            _ => None,
        }
    }
}

pub(crate) fn burn_dtype(d: DType) -> burn::tensor::DType {
    d.to_burn().unwrap_or(burn::tensor::DType::F32)
}

impl Tensor {
    pub(crate) fn new(shape: Vec<usize>, storage: Storage) -> Self {
        Tensor { shape, storage }
    }

    /// Wraps raw storage reshaped to `shape`.
    pub(crate) fn from_storage(shape: Vec<usize>, storage: Storage) -> Result<Self> {
        let p = pad(&shape)?;
        let storage = map_raw!(storage, |t| t.reshape(p), s @ Storage::Str(..) => s);
        Ok(Tensor { shape, storage })
    }

    // ----- queries (§6.1.1-c) -----

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The rank (number of axes; 0 for a scalar).
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        volume(&self.shape)
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match &self.storage {
            Storage::Float(t) => DType::from_burn(t.dtype()).unwrap_or(DType::Float32),
            Storage::Int(t) => DType::from_burn(t.dtype()).unwrap_or(DType::Int64),
            Storage::Bool(_) => DType::Bool,
            Storage::Complex(..) => DType::Complex64,
            Storage::Str(..) => DType::String,
        }
    }

    /// The device.
    pub fn device(&self) -> Device {
        match &self.storage {
            Storage::Float(t) | Storage::Complex(t, _) => t.device(),
            Storage::Int(t) => t.device(),
            Storage::Bool(t) => t.device(),
            Storage::Str(_, d) => d.clone(),
        }
    }

    // ----- creation (A.1.2.1, §6.1.1-a) -----

    /// Builds a tensor from nested data; the shape comes from the nesting and
    /// the dtype from `dtype` or the values (see [`initialize`](crate::initialize)).
    pub fn from_data(data: impl Into<Data>, dtype: Option<DType>, device: &Device) -> Result<Self> {
        Self::from_flat(flatten(&data.into(), dtype)?, device)
    }

    /// Builds a float32 tensor from row-major values.
    pub fn from_f32(values: Vec<f32>, shape: &[usize], device: &Device) -> Result<Self> {
        check_len(values.len(), shape)?;
        let raw = Raw::<Float>::from_data(
            TensorData::new(values, pad(shape)?),
            (device, burn::tensor::DType::F32),
        );
        Ok(Tensor::new(shape.to_vec(), Storage::Float(raw)))
    }

    /// Builds an int64 tensor from row-major values.
    pub fn from_i64(values: Vec<i64>, shape: &[usize], device: &Device) -> Result<Self> {
        check_len(values.len(), shape)?;
        require_dtype(device, "from_i64", DType::Int64)?;
        let raw = Raw::<Int>::from_data(
            TensorData::new(values, pad(shape)?),
            (device, burn::tensor::DType::I64),
        );
        Ok(Tensor::new(shape.to_vec(), Storage::Int(raw)))
    }

    /// Builds a string tensor from row-major values.
    pub fn from_strings(values: Vec<String>, shape: &[usize], device: &Device) -> Result<Self> {
        check_len(values.len(), shape)?;
        pad(shape)?;
        Ok(Tensor::new(
            shape.to_vec(),
            Storage::Str(Arc::new(values), device.clone()),
        ))
    }

    /// Builds a complex64 tensor from row-major values.
    pub fn from_complex(values: &[Complex], shape: &[usize], device: &Device) -> Result<Self> {
        check_len(values.len(), shape)?;
        let p = pad(shape)?;
        let part = |f: fn(&Complex) -> f32| {
            let v: Vec<f32> = values.iter().map(f).collect();
            Raw::<Float>::from_data(TensorData::new(v, p), (device, burn::tensor::DType::F32))
        };
        Ok(Tensor::new(
            shape.to_vec(),
            Storage::Complex(part(|c| c.re), part(|c| c.im)),
        ))
    }

    pub(crate) fn from_flat(flat: Flat, device: &Device) -> Result<Self> {
        let Flat {
            shape,
            dtype,
            values,
        } = flat;
        require_dtype(device, "initialize", dtype)?;
        let p = pad(&shape)?;
        let storage = match values {
            FlatValues::Real(v) => {
                let data = TensorData::new(v, p).convert_dtype(burn_dtype(dtype));
                if dtype.is_float() {
                    Storage::Float(Raw::<Float>::from_data(data, (device, burn_dtype(dtype))))
                } else {
                    Storage::Int(Raw::<Int>::from_data(data, (device, burn_dtype(dtype))))
                }
            }
            FlatValues::Bool(v) => {
                Storage::Bool(Raw::<Bool>::from_data(TensorData::new(v, p), device))
            }
            FlatValues::Str(v) => Storage::Str(Arc::new(v), device.clone()),
            FlatValues::Complex(v) => return Tensor::from_complex(&v, &shape, device),
        };
        Ok(Tensor::new(shape, storage))
    }

    /// A tensor whose contents are not initialised (Burn's `empty`); strings are empty.
    pub fn empty(shape: &[usize], dtype: DType, device: &Device) -> Result<Self> {
        require_dtype(device, "empty", dtype)?;
        let p = pad(shape)?;
        let storage = match dtype {
            DType::String => {
                Storage::Str(Arc::new(vec![String::new(); volume(shape)]), device.clone())
            }
            DType::Complex64 => Storage::Complex(Raw::empty(p, device), Raw::empty(p, device)),
            DType::Bool => Storage::Bool(Raw::<Bool>::empty(p, device)),
            d if d.is_float() => Storage::Float(Raw::<Float>::empty(p, (device, burn_dtype(d)))),
            d => Storage::Int(Raw::<Int>::empty(p, (device, burn_dtype(d)))),
        };
        Ok(Tensor::new(shape.to_vec(), storage))
    }

    /// A tensor filled with `value` (0/1 for bool; `(value, 0)` for complex).
    pub fn full(shape: &[usize], value: f64, dtype: DType, device: &Device) -> Result<Self> {
        require_dtype(device, "full", dtype)?;
        let p = pad(shape)?;
        let storage = match dtype {
            DType::String => return Err(TensorError::dtype_op("full (numeric fill)", dtype)),
            DType::Complex64 => {
                Storage::Complex(Raw::full(p, value, device), Raw::zeros(p, device))
            }
            DType::Bool => Storage::Bool(Raw::<Int>::full(p, value as i64, device).bool()),
            d if d.is_float() => {
                Storage::Float(Raw::<Float>::full(p, value, (device, burn_dtype(d))))
            }
            d => Storage::Int(Raw::<Int>::full(p, value as i64, (device, burn_dtype(d)))),
        };
        Ok(Tensor::new(shape.to_vec(), storage))
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize], dtype: DType, device: &Device) -> Result<Self> {
        Self::full(shape, 0.0, dtype, device)
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize], dtype: DType, device: &Device) -> Result<Self> {
        Self::full(shape, 1.0, dtype, device)
    }

    /// Same shape, dtype and device as `self`, filled with `value`.
    pub fn full_like(&self, value: f64) -> Result<Self> {
        Self::full(&self.shape, value, self.dtype(), &self.device())
    }

    /// Zeros like `self`.
    pub fn zeros_like(&self) -> Result<Self> {
        self.full_like(0.0)
    }

    /// Ones like `self`.
    pub fn ones_like(&self) -> Result<Self> {
        self.full_like(1.0)
    }

    /// A new tensor with the contents of `other` (fill from another tensor, §6.1.1-a).
    /// Burn tensors are immutable values, so sharing the buffer is a copy in effect.
    pub fn from_tensor(other: &Tensor) -> Self {
        other.clone()
    }

    // ----- random (T-c, §6.1.1-a) -----

    fn random(shape: &[usize], dist: Distribution, device: &Device) -> Result<Self> {
        let raw = Raw::<Float>::random(pad(shape)?, dist, device);
        Ok(Tensor::new(shape.to_vec(), Storage::Float(raw)))
    }

    /// Uniform float32 in [0, 1) (`rand`).
    pub fn rand(shape: &[usize], device: &Device) -> Result<Self> {
        Self::random(shape, Distribution::Default, device)
    }

    /// Standard normal float32 (`randn`).
    pub fn randn(shape: &[usize], device: &Device) -> Result<Self> {
        Self::normal(0.0, 1.0, shape, device)
    }

    /// Uniform float32 in [`low`, `high`).
    pub fn uniform(low: f64, high: f64, shape: &[usize], device: &Device) -> Result<Self> {
        if low.is_nan() || high.is_nan() || low >= high {
            return Err(TensorError::invalid(
                "uniform",
                format!("low {low} must be below high {high}"),
            ));
        }
        Self::random(shape, Distribution::Uniform(low, high), device)
    }

    /// Normal float32 with `mean` and standard deviation `std`.
    pub fn normal(mean: f64, std: f64, shape: &[usize], device: &Device) -> Result<Self> {
        if std.is_nan() || std < 0.0 || !mean.is_finite() {
            return Err(TensorError::invalid(
                "normal",
                format!("mean {mean}, std {std}: std must be >= 0, mean finite"),
            ));
        }
        Self::random(shape, Distribution::Normal(mean, std), device)
    }

    /// Uniform int64 in [`low`, `high`) (`randint`), exact for any range of
    /// `i64` (a float draw would leave out integers beyond 2²⁴). The draws
    /// come from a ChaCha generator seeded by four 16-bit draws of the
    /// device's generator, so [`unidl_backend::seed`] makes them reproducible.
    pub fn randint(low: i64, high: i64, shape: &[usize], device: &Device) -> Result<Self> {
        use rand::{Rng as _, SeedableRng as _};
        if low >= high {
            return Err(TensorError::invalid(
                "randint",
                format!("low {low} must be below high {high}"),
            ));
        }
        require_dtype(device, "randint", DType::Int64)?;
        let words = Raw::<Float>::random(pad(&[4])?, Distribution::Uniform(0.0, 65536.0), device)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| TensorError::invalid("randint", format!("{e:?}")))?;
        let seed = words.iter().fold(0u64, |acc, w| {
            (acc << 16) | (w.floor().clamp(0.0, 65535.0) as u64)
        });
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let values: Vec<i64> = (0..volume(shape))
            .map(|_| rng.random_range(low..high))
            .collect();
        Self::from_i64(values, shape, device)
    }

    /// Bernoulli (binomial with n = 1) float32 samples: 1 with probability `p`.
    pub fn bernoulli(p: f64, shape: &[usize], device: &Device) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(TensorError::invalid(
                "bernoulli",
                format!("probability {p} outside [0, 1]"),
            ));
        }
        Self::random(shape, Distribution::Bernoulli(p), device)
    }

    /// Bernoulli samples with per-element probabilities taken from `self` (like `torch.bernoulli`).
    pub fn bernoulli_like(&self) -> Result<Self> {
        let p = self.float_raw("bernoulli")?;
        let u = Raw::<Float>::random(pad(&self.shape)?, Distribution::Default, &self.device());
        Ok(Tensor::new(
            self.shape.clone(),
            Storage::Float(u.lower(p).float()),
        ))
    }

    // ----- conversion (§6.1.1-c) -----

    /// Casts to `dtype`. Numeric ↔ numeric ↔ bool and real → complex are allowed;
    /// complex → real and anything ↔ string are typed errors.
    pub fn to_dtype(&self, dtype: DType) -> Result<Self> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let device = self.device();
        require_dtype(&device, "cast", dtype)?;
        let from = self.dtype();
        let bad = || TensorError::invalid("cast", format!("cannot cast {from} to {dtype}"));
        let storage = match (&self.storage, dtype) {
            (Storage::Str(..), _) | (_, DType::String) => return Err(bad()),
            (Storage::Complex(..), _) => return Err(bad()),
            (_, DType::Complex64) => {
                let re = self.float_raw("cast")?.cast(burn::tensor::FloatDType::F32);
                let im = re.zeros_like();
                Storage::Complex(re, im)
            }
            (_, DType::Bool) => Storage::Bool(self.bool_raw("cast")?),
            (Storage::Float(t), d) if d.is_float() => {
                Storage::Float(t.clone().cast(float_dtype(d)))
            }
            (Storage::Float(t), d) => Storage::Int(t.clone().cast(int_dtype(d))),
            (Storage::Int(t), d) if d.is_float() => Storage::Float(t.clone().cast(float_dtype(d))),
            (Storage::Int(t), d) => Storage::Int(t.clone().cast(int_dtype(d))),
            (Storage::Bool(t), d) if d.is_float() => {
                Storage::Float(t.clone().float().cast(float_dtype(d)))
            }
            (Storage::Bool(t), d) => Storage::Int(t.clone().int().cast(int_dtype(d))),
        };
        Ok(Tensor::new(self.shape.clone(), storage))
    }

    /// Moves to another device (possibly of another back-end: the data goes through the host).
    pub fn to_device(&self, device: &Device) -> Result<Self> {
        require_dtype(device, "to_device", self.dtype())?;
        let same_backend =
            unidl_backend::backend_of(device) == unidl_backend::backend_of(&self.device());
        if !same_backend {
            return self.to_host_and(device);
        }
        let ad = device.is_autodiff();
        let storage = map_raw!(self.storage.clone(), |t| {
            let t = t.to_device(device);
            match (ad, t.is_autodiff()) {
                (true, false) => t.autodiff(),
                (false, true) => t.without_autodiff(),
                _ => t,
            }
        }, Storage::Str(v, _) => Storage::Str(v, device.clone()));
        Ok(Tensor::new(self.shape.clone(), storage))
    }

    fn to_host_and(&self, device: &Device) -> Result<Self> {
        let p = pad(&self.shape)?;
        let move_data = |d: TensorData| d;
        let storage = match &self.storage {
            Storage::Float(t) => {
                let d = move_data(t.to_data());
                let dt = d.dtype();
                Storage::Float(Raw::<Float>::from_data(d, (device, dt)))
            }
            Storage::Int(t) => {
                let d = move_data(t.to_data());
                let dt = d.dtype();
                Storage::Int(Raw::<Int>::from_data(d, (device, dt)))
            }
            Storage::Bool(t) => {
                let v: Vec<bool> = t.to_data().iter::<bool>().collect();
                Storage::Bool(Raw::<Bool>::from_data(TensorData::new(v, p), device))
            }
            Storage::Complex(re, im) => Storage::Complex(
                Raw::<Float>::from_data(re.to_data(), device),
                Raw::<Float>::from_data(im.to_data(), device),
            ),
            Storage::Str(v, _) => Storage::Str(v.clone(), device.clone()),
        };
        Ok(Tensor::new(self.shape.clone(), storage))
    }

    /// Wraps a Burn tensor of any rank ≤ 6 (a reshape; no data is copied).
    pub fn from_burn<const D: usize, K: BurnKind>(t: BT<D, K>) -> Result<Self> {
        let shape = t.dims().to_vec();
        let raw: Raw<K> = t.reshape(pad(&shape)?);
        Ok(Tensor::new(shape, K::wrap(raw)))
    }

    /// Unwraps into a Burn tensor of rank `D` and kind `K` (a reshape; no data is
    /// copied when the storage is contiguous). Rank or kind mismatch is an error.
    pub fn into_burn<const D: usize, K: BurnKind>(self) -> Result<BT<D, K>> {
        if self.rank() != D {
            return Err(TensorError::invalid(
                "into_burn",
                format!(
                    "tensor of rank {} (shape {:?}) asked for as rank {D}",
                    self.rank(),
                    self.shape
                ),
            ));
        }
        let dtype = self.dtype();
        let shape: [usize; D] = self.shape.clone().try_into().expect("rank checked");
        let raw = K::unwrap(self.storage).ok_or_else(|| {
            TensorError::invalid(
                "into_burn",
                format!("a {dtype} tensor is not of the requested Burn kind"),
            )
        })?;
        Ok(raw.reshape(shape))
    }

    // ----- reading back -----

    /// Values as f64 (float, int and bool tensors).
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        Ok(match &self.storage {
            Storage::Float(t) => t.to_data().iter::<f64>().collect(),
            Storage::Int(t) => t.to_data().iter::<i64>().map(|x| x as f64).collect(),
            Storage::Bool(t) => t
                .to_data()
                .iter::<bool>()
                .map(|b| f64::from(u8::from(b)))
                .collect(),
            _ => return Err(TensorError::dtype_op("to_vec_f64", self.dtype())),
        })
    }

    /// Values as f32 (float, int and bool tensors).
    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        Ok(self.to_vec_f64()?.into_iter().map(|x| x as f32).collect())
    }

    /// Values as i64 (int and bool tensors; floats are truncated toward zero).
    pub fn to_vec_i64(&self) -> Result<Vec<i64>> {
        Ok(match &self.storage {
            Storage::Int(t) => t.to_data().iter::<i64>().collect(),
            _ => self.to_vec_f64()?.into_iter().map(|x| x as i64).collect(),
        })
    }

    /// Values as booleans (non-zero is true).
    pub fn to_vec_bool(&self) -> Result<Vec<bool>> {
        Ok(match &self.storage {
            Storage::Bool(t) => t.to_data().iter::<bool>().collect(),
            _ => self.to_vec_f64()?.into_iter().map(|x| x != 0.0).collect(),
        })
    }

    /// Values of a string tensor.
    pub fn to_strings(&self) -> Result<Vec<String>> {
        match &self.storage {
            Storage::Str(v, _) => Ok(v.as_ref().clone()),
            _ => Err(TensorError::dtype_op("to_strings", self.dtype())),
        }
    }

    /// Values of a complex tensor.
    pub fn to_complex(&self) -> Result<Vec<Complex>> {
        match &self.storage {
            Storage::Complex(re, im) => {
                let re: Vec<f32> = re.to_data().iter::<f32>().collect();
                let im: Vec<f32> = im.to_data().iter::<f32>().collect();
                Ok(re
                    .into_iter()
                    .zip(im)
                    .map(|(re, im)| Complex { re, im })
                    .collect())
            }
            _ => Err(TensorError::dtype_op("to_complex", self.dtype())),
        }
    }

    /// The single value of a one-element tensor, as f64.
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(TensorError::invalid(
                "item",
                format!(
                    "tensor of shape {:?} has {} elements, not 1",
                    self.shape,
                    self.numel()
                ),
            ));
        }
        Ok(self.to_vec_f64()?[0])
    }

    // ----- storage helpers for the op modules -----

    /// Float storage; int and bool are cast to float32; complex and strings are errors.
    pub(crate) fn float_raw(&self, op: &str) -> Result<Raw<Float>> {
        match &self.storage {
            Storage::Float(t) => Ok(t.clone()),
            Storage::Int(t) => Ok(t.clone().float().cast(burn::tensor::FloatDType::F32)),
            Storage::Bool(t) => Ok(t.clone().float().cast(burn::tensor::FloatDType::F32)),
            _ => Err(TensorError::dtype_op(op, self.dtype())),
        }
    }

    /// Bool storage; numbers are compared with zero.
    pub(crate) fn bool_raw(&self, op: &str) -> Result<Raw<Bool>> {
        match &self.storage {
            Storage::Bool(t) => Ok(t.clone()),
            Storage::Int(t) => Ok(t.clone().not_equal_elem(0)),
            Storage::Float(t) => Ok(t.clone().not_equal_elem(0.0)),
            _ => Err(TensorError::dtype_op(op, self.dtype())),
        }
    }

    /// Marks a float tensor as requiring gradients (autodiff devices only).
    pub fn require_grad(self) -> Result<Self> {
        match self.storage {
            Storage::Float(t) => Ok(Tensor::new(self.shape, Storage::Float(t.require_grad()))),
            _ => Err(TensorError::dtype_op("require_grad", self.dtype())),
        }
    }

    /// Whether this tensor is part of an autodiff graph (a tracked float tensor).
    pub fn is_tracked(&self) -> bool {
        matches!(&self.storage, Storage::Float(t) if t.is_tracked())
    }

    /// Runs reverse-mode autodiff from this (usually scalar) float tensor.
    /// A tensor that is not part of an autodiff graph is an error, and so is
    /// an error raised by a user-defined backward function the graph ran
    /// through ([`crate::autograd::apply`]).
    pub fn backward(&self) -> Result<burn::tensor::Gradients> {
        match &self.storage {
            Storage::Float(t) if t.is_tracked() => {
                let grads = t.backward();
                crate::autograd::take_pending_error()?;
                Ok(grads)
            }
            Storage::Float(_) => Err(TensorError::invalid(
                "backward",
                "the tensor is not tracked: create the inputs on an autodiff device and mark them with require_grad",
            )),
            _ => Err(TensorError::dtype_op("backward", self.dtype())),
        }
    }

    /// The gradient of this tensor in `grads`, if it was tracked.
    pub fn grad(&self, grads: &burn::tensor::Gradients) -> Option<Tensor> {
        match &self.storage {
            Storage::Float(t) => t
                .grad(grads)
                .map(|g| Tensor::new(self.shape.clone(), Storage::Float(g))),
            _ => None,
        }
    }

    /// The same values with autodiff tracking removed.
    pub fn detach(&self) -> Self {
        match &self.storage {
            Storage::Float(t) => {
                Tensor::new(self.shape.clone(), Storage::Float(t.clone().detach()))
            }
            _ => self.clone(),
        }
    }
}

fn check_len(len: usize, shape: &[usize]) -> Result<()> {
    if len != volume(shape) {
        return Err(TensorError::DataLength {
            len,
            shape: shape.to_vec(),
            volume: volume(shape),
        });
    }
    Ok(())
}

pub(crate) fn float_dtype(d: DType) -> burn::tensor::FloatDType {
    burn_dtype(d).into()
}

pub(crate) fn int_dtype(d: DType) -> burn::tensor::IntDType {
    burn_dtype(d).into()
}

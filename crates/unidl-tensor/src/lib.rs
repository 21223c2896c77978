//! # unidl-tensor — the standard's Tensor (A.1) and Module (A.2) API
//!
//! [`Tensor`] is the standard's tensor: rank, shape and dtype known at run time,
//! on whichever back-end [`unidl_backend::select`] chose. It wraps Burn tensors
//! (numeric dtypes), host strings (`string`) and (re, im) float pairs
//! (`complex64`), and converts to and from Burn's static `Tensor<D, K>` for model
//! code with a reshape of the same buffer.
//!
//! The standard's free functions are here under their own names:
//! [`initialize`], [`index`], [`permute`], [`reshape`]; the module interfaces
//! (`forward`, `get_parameters`, `get_modules`, `load_state_dict`, `backward`)
//! are in [`module`]; `register_backward_function` is in [`autograd`].
//!
//! Architecture invariant: depends on `unidl-backend` and Burn only; never on
//! the data, training or zoo crates.
//!
//! Depends on: `unidl-backend`.

pub mod autograd;
pub mod collective;
mod custom_op;
mod data;
mod error;
mod forward;
pub mod module;
mod ops;
mod shape;
mod structural;
mod tensor;
pub mod trace;

pub use data::{Complex, Data};
pub use error::{Result, TensorError};
pub use ops::Axes;
pub use shape::{MAX_RANK, volume};
pub use structural::Idx;
pub use tensor::{BurnKind, Tensor};
pub use unidl_backend::{DType, Device};

/// `initialize(data, type?)` (A.1.2.1): a tensor whose shape is inferred from
/// the nesting of `data`. Without `dtype` the values decide: strings → string,
/// complex → complex64, any float → float32, integers → int64, booleans → bool.
///
/// Ragged data is [`TensorError::Ragged`] naming the position; a dtype the
/// device cannot hold is a [`unidl_backend::BackendError::Unsupported`].
///
/// ```
/// use unidl_tensor::{initialize, DType, Device};
/// let t = initialize(vec![vec![1, 2, 3], vec![4, 5, 6]], None, &Device::flex()).unwrap();
/// assert_eq!(t.shape(), &[2, 3]);
/// assert_eq!(t.dtype(), DType::Int64);
/// ```
pub fn initialize(data: impl Into<Data>, dtype: Option<DType>, device: &Device) -> Result<Tensor> {
    Tensor::from_data(data, dtype, device)
}

/// `index(tensor, index)` (A.1.2.2): `t[i, j, a:b:s, …]`; see [`Idx`].
pub fn index(tensor: &Tensor, items: &[Idx]) -> Result<Tensor> {
    tensor.index(items)
}

/// `permute(tensor, dims)` (A.1.2.3).
pub fn permute(tensor: &Tensor, dims: &[isize]) -> Result<Tensor> {
    tensor.permute(dims)
}

/// `reshape(tensor, shape)` (A.1.2.4): one `-1` allowed; the volume must not change.
pub fn reshape(tensor: &Tensor, shape: &[isize]) -> Result<Tensor> {
    tensor.reshape(shape)
}

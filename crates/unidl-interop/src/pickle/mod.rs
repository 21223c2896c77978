//! A restricted unpickler: reads Python pickles (protocols 0–5) that hold
//! dicts, lists, tuples, strings, numbers, PyTorch tensors and NumPy arrays,
//! and **never executes code**.
//!
//! A general unpickler imports any `module.name` a pickle names (`GLOBAL`,
//! `STACK_GLOBAL`) and calls it (`REDUCE`, `NEWOBJ`, `BUILD`); a hostile file
//! uses this to run `os.system`. This one knows a fixed whitelist of globals
//! and what each builds, and refuses everything else with
//! [`InteropError::Unsupported`](crate::error::InteropError::Unsupported) naming the global:
//!
//! | global | what it builds here |
//! |---|---|
//! | `collections.OrderedDict` | an empty dict (`BUILD` attributes such as `_metadata` are ignored) |
//! | `torch._utils._rebuild_tensor_v2` | a [`TorchTensorRef`] (storage, offset, size, stride) |
//! | `torch._utils._rebuild_parameter`, `_rebuild_parameter_with_state` | its tensor argument |
//! | `torch.{Float,Double,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage` | a storage dtype (in persistent ids) |
//! | `numpy.core.multiarray._reconstruct` (also `numpy._core.…`) with `numpy.ndarray` | an array, filled by `BUILD` |
//! | `numpy.dtype` | a dtype (`BUILD` sets its byte order) |
//! | `numpy.core.multiarray.scalar` | a 0-d array |
//! | `builtins.tuple`, `builtins.list` (and `__builtin__`) | a tuple or list of their argument (Paddle wraps each tensor as `(name, array)`) |
//!
//! `INST`, `OBJ`, `NEWOBJ`, `NEWOBJ_EX`, the extension registry and any other
//! global are refused. Persistent ids (PyTorch's storages) are handed to a
//! caller-supplied function.
//!
//! Bounds (the file decides both, so both are checked, D28): containers nest
//! at most [`MAX_DEPTH`] deep (deeper nesting would overflow the stack when
//! the value is dropped or walked), and the copies that `DUP`, `PUT` and
//! `GET` make may add up to at most four nodes per byte of the pickle plus
//! 2^20 (a few bytes that copy a list into itself again and again would
//! otherwise build an exponentially large value). Either is
//! [`InteropError::Corrupt`](crate::error::InteropError::Corrupt).
//!
//! Limitation: values are copied, not shared; a container that is filled
//! after it was memoized and later referenced again through the memo is seen
//! as it was when memoized. State dicts never do this.

mod elem;
mod limits;
mod machine;
mod persistent;
mod value;
mod whitelist;

pub use elem::ElemType;
pub use limits::MAX_DEPTH;
pub use machine::unpickle;
pub use persistent::{no_persistent_load, torch_persistent_load};
pub use value::{NumpyDtype, StorageRef, TorchTensorRef, Value};

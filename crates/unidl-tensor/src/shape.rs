//! Shape arithmetic shared by every operation: padding to the storage rank,
//! broadcasting, dimension normalisation, `-1` inference.

use crate::error::{Result, TensorError};

/// Storage rank: every tensor is held by Burn as a rank-`MAX_RANK` tensor whose
/// leading axes are 1. Ranks 0 ..= `MAX_RANK` are supported.
pub const MAX_RANK: usize = 6;

/// Number of elements of a shape (1 for a scalar).
pub fn volume(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// `shape` left-padded with ones to [`MAX_RANK`].
pub(crate) fn pad(shape: &[usize]) -> Result<[usize; MAX_RANK]> {
    if shape.len() > MAX_RANK {
        return Err(TensorError::RankTooLarge {
            rank: shape.len(),
            max: MAX_RANK,
        });
    }
    let mut out = [1usize; MAX_RANK];
    out[MAX_RANK - shape.len()..].copy_from_slice(shape);
    Ok(out)
}

/// Offset of logical axis 0 inside the padded storage.
pub(crate) fn offset(rank: usize) -> usize {
    MAX_RANK - rank
}

/// Normalises a possibly negative `dim` for a tensor of `rank` (`allow_end`
/// accepts `dim == rank`, as `unsqueeze` and `stack` do).
pub(crate) fn norm_dim(op: &str, dim: isize, rank: usize, allow_end: bool) -> Result<usize> {
    // A scalar accepts dim 0 / -1, as in PyTorch.
    let r = (rank as isize + isize::from(allow_end)).max(1);
    let d = if dim < 0 { dim + r } else { dim };
    if d < 0 || d >= r {
        return Err(TensorError::BadDim {
            op: op.to_string(),
            dim,
            rank,
        });
    }
    Ok(d as usize)
}

/// NumPy broadcasting of two shapes; the error names both shapes.
pub(crate) fn broadcast(op: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(TensorError::ShapeMismatch {
                op: op.to_string(),
                lhs: a.to_vec(),
                rhs: b.to_vec(),
                detail: format!(" (axis {i} from the right-aligned end: {da} vs {db})"),
            });
        };
    }
    Ok(out)
}

/// Resolves a reshape target with at most one `-1`.
pub(crate) fn infer_reshape(from: &[usize], to: &[isize]) -> Result<Vec<usize>> {
    let vol = volume(from);
    let err = || TensorError::ReshapeVolume {
        from: from.to_vec(),
        from_volume: vol,
        to: to.to_vec(),
    };
    let mut unknown = None;
    let mut known = 1usize;
    for (i, &d) in to.iter().enumerate() {
        if d == -1 {
            if unknown.replace(i).is_some() {
                return Err(TensorError::invalid(
                    "reshape",
                    "only one dimension may be -1",
                ));
            }
        } else if d < 0 {
            return Err(TensorError::invalid(
                "reshape",
                format!("dimension {d} at position {i} is negative"),
            ));
        } else {
            known *= d as usize;
        }
    }
    let mut out: Vec<usize> = to.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(i) = unknown {
        if known == 0 || !vol.is_multiple_of(known) {
            return Err(err());
        }
        out[i] = vol / known;
    } else if known != vol {
        return Err(err());
    }
    Ok(out)
}

/// Checks that `perm` is a permutation of `0..rank` (negative axes allowed).
pub(crate) fn check_perm(perm: &[isize], rank: usize) -> Result<Vec<usize>> {
    if perm.len() != rank {
        return Err(TensorError::invalid(
            "permute",
            format!("{} axes given for a tensor of rank {rank}", perm.len()),
        ));
    }
    let mut seen = vec![false; rank];
    let mut out = Vec::with_capacity(rank);
    for &p in perm {
        let d = norm_dim("permute", p, rank, false)?;
        if std::mem::replace(&mut seen[d], true) {
            return Err(TensorError::invalid(
                "permute",
                format!("axis {d} repeated in {perm:?}"),
            ));
        }
        out.push(d);
    }
    Ok(out)
}

/// Row-major strides.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Walks the row-major positions of `out_shape`, taking for each the source
/// element at `src(index)`. The one loop behind every host (string) op.
fn host_walk<T: Clone>(
    values: &[T],
    out_shape: &[usize],
    src: impl Fn(&[usize]) -> usize,
) -> Vec<T> {
    let n = volume(out_shape);
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; out_shape.len()];
    for _ in 0..n {
        out.push(values[src(&idx)].clone());
        for a in (0..idx.len()).rev() {
            idx[a] += 1;
            if idx[a] < out_shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    out
}

/// Gathers host values: for each axis, the list of source indices to take.
/// Used for string tensors, which live on the host.
pub(crate) fn host_gather<T: Clone>(values: &[T], shape: &[usize], picks: &[Vec<usize>]) -> Vec<T> {
    let st = strides(shape);
    let out_shape: Vec<usize> = picks.iter().map(Vec::len).collect();
    host_walk(values, &out_shape, |idx| {
        idx.iter()
            .enumerate()
            .map(|(a, &i)| picks[a][i] * st[a])
            .sum()
    })
}

/// Permutes host values.
pub(crate) fn host_permute<T: Clone>(values: &[T], shape: &[usize], perm: &[usize]) -> Vec<T> {
    let st = strides(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    host_walk(values, &out_shape, |idx| {
        idx.iter().enumerate().map(|(a, &i)| i * st[perm[a]]).sum()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast("add", &[3, 1], &[4]).unwrap(), vec![3, 4]);
        assert_eq!(broadcast("add", &[], &[2, 2]).unwrap(), vec![2, 2]);
        let e = broadcast("add", &[2, 3], &[4, 3]).unwrap_err();
        assert!(e.to_string().contains("[2, 3] and [4, 3]"), "{e}");
    }

    #[test]
    fn reshape_inference() {
        assert_eq!(infer_reshape(&[2, 6], &[3, -1]).unwrap(), vec![3, 4]);
        let e = infer_reshape(&[2, 6], &[5, 2]).unwrap_err();
        assert!(e.to_string().contains("[2, 6]") && e.to_string().contains("[5, 2]"));
        assert!(infer_reshape(&[4], &[-1, -1]).is_err());
    }

    #[test]
    fn dims_normalise() {
        assert_eq!(norm_dim("x", -1, 3, false).unwrap(), 2);
        assert_eq!(norm_dim("x", 3, 3, true).unwrap(), 3);
        assert!(norm_dim("x", 3, 3, false).is_err());
        assert!(norm_dim("x", -4, 3, false).is_err());
        assert_eq!(norm_dim("x", 0, 0, true).unwrap(), 0);
    }

    #[test]
    fn host_permute_transposes() {
        let v = [1, 2, 3, 4, 5, 6];
        assert_eq!(host_permute(&v, &[2, 3], &[1, 0]), vec![1, 4, 2, 5, 3, 6]);
        assert_eq!(host_gather(&v, &[2, 3], &[vec![1], vec![2, 0]]), vec![6, 4]);
    }
}

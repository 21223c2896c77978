//! Checksum repair for the `tf-checkpoint` target.
//!
//! Every block of a TensorFlow bundle index carries a masked CRC32C, so
//! almost every mutation is rejected by the checksum before the block
//! parser or the protobuf decoder sees it. This fixup recomputes the
//! checksums of the index block and of every data block the (possibly
//! mutated) index block points to, wherever the handles lie inside the file;
//! whatever else the mutation did stays.

/// Recomputes the block checksums of an SSTable in place (best effort: a
/// handle outside the file is left alone).
pub fn fix_checksums(b: &mut [u8]) {
    const FOOTER: usize = 48;
    if b.len() < FOOTER {
        return;
    }
    let footer = b[b.len() - FOOTER..].to_vec();
    let mut pos = 0;
    let Some(_meta) = handle(&footer, &mut pos) else {
        return;
    };
    let Some(index) = handle(&footer, &mut pos) else {
        return;
    };
    let Some(block) = fix_block(b, index) else {
        return;
    };
    for value in block_values(&block) {
        let mut p = 0;
        if let Some(h) = handle(&value, &mut p) {
            fix_block(b, h);
        }
    }
}

/// Rewrites the trailer checksum of the block at `(offset, size)`; returns
/// its contents.
fn fix_block(b: &mut [u8], (off, size): (usize, usize)) -> Option<Vec<u8>> {
    let end = off.checked_add(size)?.checked_add(5)?;
    if end > b.len() {
        return None;
    }
    let contents = b[off..off + size].to_vec();
    let kind = b[off + size];
    let crc = mask(crc32c_extend(crc32c_extend(0, &contents), &[kind]));
    b[off + size + 1..end].copy_from_slice(&crc.to_le_bytes());
    Some(contents)
}

/// Values of a block's entries (stops at the first malformed entry).
fn block_values(block: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if block.len() < 4 {
        return out;
    }
    let mut n = [0u8; 4];
    n.copy_from_slice(&block[block.len() - 4..]);
    let restarts = u32::from_le_bytes(n) as usize;
    let Some(data_len) = restarts
        .checked_mul(4)
        .and_then(|r| r.checked_add(4))
        .and_then(|r| block.len().checked_sub(r))
    else {
        return out;
    };
    let data = &block[..data_len];
    let mut pos = 0;
    while pos < data.len() {
        let (Some(_shared), Some(unshared), Some(vlen)) = (
            varint(data, &mut pos),
            varint(data, &mut pos),
            varint(data, &mut pos),
        ) else {
            break;
        };
        let Some(vstart) = pos.checked_add(unshared as usize) else {
            break;
        };
        let Some(vend) = vstart
            .checked_add(vlen as usize)
            .filter(|&e| e <= data.len())
        else {
            break;
        };
        out.push(data[vstart..vend].to_vec());
        pos = vend;
    }
    out
}

fn handle(b: &[u8], pos: &mut usize) -> Option<(usize, usize)> {
    let off = usize::try_from(varint(b, pos)?).ok()?;
    let size = usize::try_from(varint(b, pos)?).ok()?;
    Some((off, size))
}

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn crc32c_extend(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &byte in data {
        c ^= u32::from(byte);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0x82f6_3b78 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Vec<u8> {
        let root = crate::driver::default_root();
        std::fs::read(root.join("crates/unidl-interop/tests/fixtures/tf/ckpt/ref.index")).unwrap()
    }

    #[test]
    fn crc32c_matches_the_check_value() {
        assert_eq!(crc32c_extend(0, b"123456789"), 0xe306_9283);
    }

    #[test]
    fn a_valid_index_is_left_as_it_is() {
        let good = index();
        let mut fixed = good.clone();
        fix_checksums(&mut fixed);
        assert_eq!(fixed, good);
    }

    #[test]
    fn a_mutated_block_gets_its_checksum_back() {
        let good = index();
        let mut bad = good.clone();
        bad[3] ^= 0x40;
        let path = std::path::Path::new("x.index");
        assert!(unidl_interop::tf::read_sstable(&bad, path).is_err());
        fix_checksums(&mut bad);
        assert_ne!(bad, good);
        // The checksum passes now; what the flipped bit did to the entry is
        // the block parser's business.
        match unidl_interop::tf::read_sstable(&bad, path) {
            Ok(_) => {}
            Err(e) => assert!(!e.to_string().contains("checksum"), "{e}"),
        }
    }
}

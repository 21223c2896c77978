#!/usr/bin/env python3
"""Writes the hand-made seed files of the fuzz targets that have no fixture
elsewhere in the repository (standard library only; the output is committed):

- image-bmp/: small BMPs in the encodings the `image` crate decodes
  (24-bit, 8-bit palette, 8-bit RLE, 32-bit with bit fields, 1-bit).
- gettext-mo/: GNU .mo catalogues, little- and big-endian, with a context
  and a plural entry.
- tokenizer/: tiny `tokenizer.json` files (WordPiece and BPE models).

Run from anywhere: python3 crates/unidl-fuzz/corpus/make_seeds.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def out(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    mode = "w" if isinstance(data, str) else "wb"
    with open(os.path.join(d, name), mode) as f:
        f.write(data)


def bmp(width, height, bpp, pixels, palette=b"", compression=0, masks=b""):
    header_len = 40 + len(masks)
    offset = 14 + header_len + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40 if not masks else 40, width, height, 1, bpp,
                       compression, len(pixels), 2835, 2835, len(palette) // 4, 0)
    size = offset + len(pixels)
    return b"BM" + struct.pack("<IHHI", size, 0, 0, offset) + info + masks + palette + pixels


def rows(height, row_bytes):
    pad = (-len(row_bytes(0))) % 4
    return b"".join(row_bytes(y) + b"\0" * pad for y in range(height))


def make_bmps():
    # 3x2, 24-bit BGR, bottom-up.
    out("image-bmp", "rgb24.bmp",
        bmp(3, 2, 24, rows(2, lambda y: bytes([10 * y, 20, 30, 40, 50 * y, 60, 70, 80, 90]))))
    # 4x4, 8-bit with a 4-colour palette.
    palette = bytes([0, 0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 0, 0, 255, 0, 0])
    out("image-bmp", "pal8.bmp",
        bmp(4, 4, 8, rows(4, lambda y: bytes([(x + y) % 4 for x in range(4)])), palette))
    # 4x2, 8-bit RLE: runs, an absolute run, end of line, end of bitmap.
    rle = bytes([2, 1, 2, 3, 0, 0, 0, 4, 0, 1, 2, 3, 0, 0, 0, 1])
    out("image-bmp", "rle8.bmp", bmp(4, 2, 8, rle, palette, compression=1))
    # 2x2, 32-bit with BI_BITFIELDS masks (BGRA).
    masks = struct.pack("<III", 0x00FF0000, 0x0000FF00, 0x000000FF)
    px = bytes([1, 2, 3, 255, 4, 5, 6, 255, 7, 8, 9, 255, 10, 11, 12, 255])
    data = bmp(2, 2, 32, px, compression=3, masks=masks)
    out("image-bmp", "bitfields32.bmp", data)
    # 8x2, 1-bit, top-down (negative height).
    mono_palette = bytes([0, 0, 0, 0, 255, 255, 255, 0])
    out("image-bmp", "mono1.bmp",
        bmp(8, -2, 1, rows(2, lambda y: bytes([0b10101010 if y else 0b01010101])), mono_palette))


def mo(entries, big_endian=False):
    """A .mo file: entries are (source bytes, translation bytes), sorted."""
    entries = sorted(entries)
    e = ">" if big_endian else "<"
    n = len(entries)
    header_len = 28
    src_table = header_len
    dst_table = src_table + 8 * n
    strings = dst_table + 8 * n
    src_desc, dst_desc, blob = b"", b"", b""
    for s, _ in entries:
        src_desc += struct.pack(e + "II", len(s), strings + len(blob))
        blob += s + b"\0"
    for _, t in entries:
        dst_desc += struct.pack(e + "II", len(t), strings + len(blob))
        blob += t + b"\0"
    head = struct.pack(e + "IIIIIII", 0x950412DE, 0, n, src_table, dst_table, 0, 0)
    return head + src_desc + dst_desc + blob


def make_mos():
    entries = [
        (b"", b"Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=2; plural=(n != 1);\n"),
        (b"Open", "Öffnen".encode()),
        (b"_Save As\xe2\x80\xa6", "Speichern _unter…".encode()),
        (b"menu\x04Quit", b"Beenden"),
        (b"%d layer\0%d layers", b"%d Ebene\0%d Ebenen"),
    ]
    out("gettext-mo", "de_le.mo", mo(entries))
    out("gettext-mo", "de_be.mo", mo(entries[:3], big_endian=True))


def added(i, content):
    return {"id": i, "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": True}


SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def make_tokenizers():
    words = ["the", "a", "fuzz", "file", "read", "er", "##s", "##ing", "##ed", "hello",
             "world", ",", ".", "1", "2", "3", "##1", "##2", "##3", "h", "##e", "##l", "##o",
             "w", "##r", "##d", "f", "##u", "##z"]
    vocab = {t: i for i, t in enumerate(SPECIAL + words)}
    wordpiece = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(i, t) for i, t in enumerate(SPECIAL)],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                           "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                                              "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }
    out("tokenizer", "wordpiece.json", json.dumps(wordpiece, indent=1, ensure_ascii=False))

    chars = ["h", "e", "l", "o", "w", "r", "d", "f", "u", "z", "t", "a", "s", " ", ",", "."]
    merges = [["h", "e"], ["l", "l"], ["he", "ll"], ["hell", "o"], ["f", "u"], ["fu", "z"], ["fuz", "z"]]
    bpe_vocab = {t: i for i, t in enumerate(SPECIAL + chars + ["".join(m) for m in merges])}
    bpe = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(i, t) for i, t in enumerate(SPECIAL)],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}]},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "BPE", "dropout": None, "unk_token": "[UNK]",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": bpe_vocab, "merges": merges},
    }
    out("tokenizer", "bpe.json", json.dumps(bpe, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    make_bmps()
    make_mos()
    make_tokenizers()

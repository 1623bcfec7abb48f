"""stored_body.py - decodes a delivery body as the store keeps it
(src/store/body.h): identity, an LZ4 block, or a zlib stream. The LZ4
block decoder is written from the format's description
(lz4_Block_format.md), independently of liblz4, so a test reading the
store checks the bytes are real LZ4."""
import zlib


def _length(src, i, nibble, what):
    """A token's length nibble and, when it is 15, the bytes that extend
    it (each added, until one under 255); returns (length, next index)."""
    if nibble != 15:
        return nibble, i
    while True:
        if i >= len(src):
            raise ValueError(what + " length runs past the end")
        b = src[i]
        i += 1
        nibble += b
        if b != 255:
            return nibble, i


def lz4_block_decode(src, size):
    """Decodes one LZ4 block into exactly size bytes; ValueError if it is
    not a valid block of that size."""
    out = bytearray()
    i, n = 0, len(src)
    while i < n:
        token = src[i]
        i += 1
        lit, i = _length(src, i, token >> 4, "literal")
        if i + lit > n:
            raise ValueError("literals run past the end")
        out += src[i:i + lit]
        i += lit
        if i == n:
            break  # the last sequence has literals only
        if i + 2 > n:
            raise ValueError("match offset runs past the end")
        off = src[i] | (src[i + 1] << 8)
        i += 2
        if off == 0 or off > len(out):
            raise ValueError("bad match offset %d" % off)
        mlen, i = _length(src, i, token & 15, "match")
        mlen += 4
        start = len(out) - off
        for k in range(mlen):  # may overlap itself
            out.append(out[start + k])
    if len(out) != size:
        raise ValueError("decoded %d bytes, expected %d" % (len(out), size))
    return bytes(out)


def decode(body, encoding, size):
    """The raw bytes of a stored body (body_encoding, body_size columns)."""
    body = bytes(body)
    if encoding in (None, "identity"):
        return body
    if encoding == "lz4":
        return lz4_block_decode(body, size)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise ValueError("unknown body encoding %r" % encoding)

/// Adler-32 (RFC 1950), the checksum of the sealed packet files and of a published file's signature; the same
/// values as FFmpeg's `av_adler32_update`, which the layers above FFmpeg cannot call.
package enum Adler32 {
    private static let mod: UInt32 = 65521
    /// Bytes summed before a reduction: the largest n with 255·n(n+1)/2 + (n+1)(mod−1) < 2³² (zlib's NMAX).
    private static let run = 5552

    /// `sum` updated with `count` bytes at `bytes` (start from 1).
    package static func update(_ sum: UInt32, _ bytes: UnsafePointer<UInt8>, _ count: Int) -> UInt32 {
        var a = sum & 0xffff, b = sum >> 16
        var i = 0
        while i < count {
            let end = min(count, i + run)
            while i < end { a &+= UInt32(bytes[i]); b &+= a; i += 1 }
            a %= mod; b %= mod
        }
        return b << 16 | a
    }
}

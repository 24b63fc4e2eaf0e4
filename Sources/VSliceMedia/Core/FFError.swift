import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

// FFmpeg's error codes in vslice's terms: the one place that turns an FFmpeg return code into a VSliceError.

extension VSliceError {
    /// A disk (or quota) that is full: FFmpeg's ENOSPC/EDQUOT, or the system's words for it.
    package var isDiskFull: Bool {
        kind == .processing && (code == vs_averror(ENOSPC) || code == vs_averror(EDQUOT)
                                || reason.contains(String(cString: strerror(ENOSPC))))
    }

    /// This error, marked deterministic unless its FFmpeg code is one that may pass (out of memory, disk
    /// full, I/O error, interrupted): a filter or encoder that rejects its input rejects it every time.
    package func deterministicUnlessTransient() -> VSliceError {
        var e = self
        let transient = [ENOMEM, ENOSPC, EDQUOT, EIO, EINTR, EAGAIN].map { vs_averror($0) } + [vs_averror_exit()]
        if kind == .processing, let code, !transient.contains(code) { e.deterministic = true }
        return e
    }
}

/// FFmpeg's message for an error code; "FFmpeg error N" for a code FFmpeg has no words for (rather than its
/// "Error number N occurred").
package func ffErrorString(_ code: Int32) -> String {
    var buf = [CChar](repeating: 0, count: 256)
    let known = buf.withUnsafeMutableBufferPointer { p in av_strerror(code, p.baseAddress, p.count) == 0 }
    return known ? String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "FFmpeg error \(code)"
}

/// Turns a negative FFmpeg return code into a `VSliceError`; returns the code otherwise.
@discardableResult
package func ffCheck(_ ret: Int32, _ operation: String, path: String? = nil, kind: VSliceError.Kind = .processing) throws(VSliceError) -> Int32 {
    if ret < 0 {
        if ret == vs_averror_exit() {
            throw VSliceError(.interrupted, operation, path: path, reason: "interrupted", code: ret)
        }
        throw VSliceError(kind, operation, path: path, reason: ffErrorString(ret), code: ret)
    }
    return ret
}

package let AVERROR_EOF_: Int32 = vs_averror_eof()
package let AVERROR_EAGAIN_: Int32 = vs_averror_eagain()
package let AV_NOPTS: Int64 = vs_nopts_value()

import CFFmpeg

/// The one error type of VSliceKit. It says what failed (`operation`), on which file, and why, and it
/// carries the category that decides the process exit code (see README, "Exit codes").
public struct VSliceError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable, Codable {
        /// Processing failed (encoder, muxer, disk, verification). Exit 1.
        case processing
        /// The command line asked for something impossible. Exit 2.
        case usage
        /// The input is missing, unreadable, invalid or unsupported. Exit 3.
        case input
        /// The output exists and `--force` was not given. Exit 4.
        case outputExists
        /// A resumable task cannot be resumed as asked (changed input or settings, busy). Exit 5.
        case resumeRefused
        /// Interrupted by a signal; the task stays resumable. Exit 130.
        case interrupted
    }

    public var kind: Kind
    public var operation: String
    public var path: String?
    public var reason: String
    /// FFmpeg's error code, when the failure came from FFmpeg.
    public var code: Int32?
    /// The same work would fail the same way again (a filter or encoder that rejects its input, a filtered
    /// segment with the wrong frame count): not worth a retry.
    public var deterministic = false

    public init(_ kind: Kind, _ operation: String, path: String? = nil, reason: String, code: Int32? = nil) {
        self.kind = kind
        self.operation = operation
        self.path = path
        self.reason = reason
        self.code = code
    }

    public var exitCode: Int32 { kind.exitCode }

    public var description: String {
        var s = operation
        if let path { s += " '\(path)'" }
        s += ": " + reason
        return s
    }
}

extension VSliceError.Kind {
    public var exitCode: Int32 {
        switch self {
        case .processing: 1
        case .usage: 2
        case .input: 3
        case .outputExists: 4
        case .resumeRefused: 5
        case .interrupted: 130
        }
    }
}

extension VSliceError {
    /// This error, marked deterministic unless its FFmpeg code is one that may pass (out of memory, disk
    /// full, I/O error, interrupted): a filter or encoder that rejects its input rejects it every time.
    func deterministicUnlessTransient() -> VSliceError {
        var e = self
        let transient = [ENOMEM, ENOSPC, EDQUOT, EIO, EINTR, EAGAIN].map { vs_averror($0) } + [vs_averror_exit()]
        if kind == .processing, let code, !transient.contains(code) { e.deterministic = true }
        return e
    }
}

/// FFmpeg's message for an error code.
func ffErrorString(_ code: Int32) -> String {
    var buf = [CChar](repeating: 0, count: 256)
    return buf.withUnsafeMutableBufferPointer { p in
        String(cString: vs_err2str(code, p.baseAddress, p.count))
    }
}

/// Turns a negative FFmpeg return code into a `VSliceError`; returns the code otherwise.
@discardableResult
func ffCheck(_ ret: Int32, _ operation: String, path: String? = nil, kind: VSliceError.Kind = .processing) throws(VSliceError) -> Int32 {
    if ret < 0 {
        if ret == vs_averror_exit() {
            throw VSliceError(.interrupted, operation, path: path, reason: "interrupted", code: ret)
        }
        throw VSliceError(kind, operation, path: path, reason: ffErrorString(ret), code: ret)
    }
    return ret
}

let AVERROR_EOF_: Int32 = vs_averror_eof()
let AVERROR_EAGAIN_: Int32 = vs_averror_eagain()
let AV_NOPTS: Int64 = vs_nopts_value()

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

    /// Running the same task again would fail the same way: bad input or options, a resume refused (the input
    /// or what the command reads changed), or a deterministic processing failure. A missing input is not: a
    /// file on a mount that was down may be back, a permission may be given, a disk may read again.
    public var failsAgain: Bool {
        switch kind {
        case .usage, .resumeRefused: true
        case .input: !["no such file", "permission denied", "input/output error"].contains { reason.localizedCaseInsensitiveContains($0) }
        case .processing: deterministic
        case .outputExists, .interrupted: false
        }
    }

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

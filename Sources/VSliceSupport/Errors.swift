import Foundation

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
    /// Every input would fail the same way (the same program cannot start: a command or module missing), so a
    /// batch stops at once rather than failing each input.
    public var everyInput = false

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

/// One line for an error from Foundation or the system (a file operation, JSON coding, starting a program):
/// the system's words for it ("Permission denied"), never an `NSError`'s dump of its user info.
public func plainReason(_ error: any Error) -> String {
    if let e = error as? VSliceError { return e.reason }
    if let e = error as? DecodingError { return decodingReason(e) }
    if let e = error as? EncodingError, case .invalidValue(_, let context) = e { return context.debugDescription }
    let ns = error as NSError
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    if let under = ns.userInfo[NSUnderlyingErrorKey].flatMap({ $0 as? any Error }).map({ $0 as NSError }),
       under.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(under.code)))
    }
    if ns.domain == NSCocoaErrorDomain, let errno = cocoaErrno[ns.code] { return String(cString: strerror(errno)) }
    return ns.localizedDescription.split(whereSeparator: \.isNewline).joined(separator: " ")
}

/// Foundation's file error codes and the `errno` each stands for.
private let cocoaErrno: [Int: Int32] = [
    CocoaError.fileNoSuchFile.rawValue: ENOENT, CocoaError.fileReadNoSuchFile.rawValue: ENOENT,
    CocoaError.fileReadNoPermission.rawValue: EACCES, CocoaError.fileWriteNoPermission.rawValue: EACCES,
    CocoaError.fileWriteOutOfSpace.rawValue: ENOSPC, CocoaError.fileWriteVolumeReadOnly.rawValue: EROFS,
    CocoaError.fileWriteFileExists.rawValue: EEXIST,
]

/// "no key 'plan' at segments[2]"-style words for a JSON that does not fit.
private func decodingReason(_ error: DecodingError) -> String {
    func at(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return path.isEmpty ? "" : " at \(path.hasPrefix(".") ? String(path.dropFirst()) : path)"
    }
    switch error {
    case .keyNotFound(let key, let context): return "no key '\(key.stringValue)'\(at(context))"
    case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
        return context.debugDescription.split(whereSeparator: \.isNewline).joined(separator: " ") + at(context)
    @unknown default: return "\(error)"
    }
}

/// Which failed segment attempts are worth another: the one policy of every executor (local threads, Slurm
/// resubmissions, an external runner told by the worker's exit code).
extension VSliceError {
    /// Running the same work again would fail the same way: a bad option, bad or changed input, or a
    /// processing failure marked deterministic (a filter or encoder that rejects its input, a filtered segment
    /// with the wrong frame count). No executor tries it again; a remote one fails the task at once.
    public var failsEveryTime: Bool {
        switch kind {
        case .usage, .input: true
        case .processing: deterministic
        case .outputExists, .resumeRefused, .interrupted: false
        }
    }

    /// A failed attempt in this process that may succeed if tried again: a processing failure that does not
    /// fail every time. (A remote executor also submits again an element a signal stopped — a scheduler's
    /// cancel, a lost node —, which here would be this process's own Ctrl-C.)
    public var worthRetry: Bool { kind == .processing && !failsEveryTime }

    /// Exit code of `vslice segment` for a processing failure that fails every time: a runner that sees only
    /// exit codes (a Kubernetes `podFailurePolicy`) can then leave it alone, as it does 2 and 3.
    public static let deterministicWorkerExit: Int32 = 7

    /// The exit code of `vslice segment` for this failure: the documented one, except 7 for a processing
    /// failure that fails every time.
    public var workerExitCode: Int32 { kind == .processing && failsEveryTime ? Self.deterministicWorkerExit : exitCode }
}

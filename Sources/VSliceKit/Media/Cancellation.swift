import CFFmpeg
import Synchronization

/// Process-wide stop switch. `requestAbort()` makes every blocking FFmpeg call that has our interrupt
/// callback installed return `AVERROR_EXIT` at its next check, so nothing can hang past a second Ctrl-C.
public enum Cancellation {
    static let abortFlag = Atomic<Bool>(false)
    static let stopFlag = Atomic<Bool>(false)

    /// Stop dispatching new work; running work may finish.
    public static func requestStop() { stopFlag.store(true, ordering: .relaxed) }
    /// Abort running work at once.
    public static func requestAbort() {
        stopFlag.store(true, ordering: .relaxed)
        abortFlag.store(true, ordering: .relaxed)
    }
    public static var stopRequested: Bool { stopFlag.load(ordering: .relaxed) }
    public static var abortRequested: Bool { abortFlag.load(ordering: .relaxed) }

    static func throwIfAborted(_ operation: String, path: String? = nil) throws(VSliceError) {
        if abortRequested {
            throw VSliceError(.interrupted, operation, path: path, reason: "interrupted")
        }
    }
}

/// The interrupt callback given to every format context: non-zero means "stop now".
let vsliceInterruptCallback: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { _ in
    Cancellation.abortRequested ? 1 : 0
}

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

/// One piece of work's own stop switch and I/O deadline, checked by FFmpeg's interrupt callback of the
/// files it opens: the watchdog abandons a stalled segment through it without touching the others, and a
/// single blocking FFmpeg call on an input (open, stream info, read, seek) may not last longer than `ioDeadline` seconds.
public final class WorkWatch: Sendable {
    /// Seconds one blocking FFmpeg call may take before it is interrupted.
    public static let defaultIODeadline = 120.0

    let ioDeadline: Double
    private let abandonedFlag = Atomic<Bool>(false)
    private let reason = Mutex<String?>(nil)
    /// Monotonic milliseconds when the current blocking call began, 0 when none runs.
    private let ioStart = Atomic<Int64>(0)
    /// Monotonic milliseconds of the last progress report.
    private let lastProgress = Atomic<Int64>(WorkWatch.nowMillis())

    /// What counts as progress, for the stall message: "no frame decoded", "no frame from the processor".
    let stalledMeans: String

    public init(ioDeadline: Double = WorkWatch.defaultIODeadline, stalledMeans: String = "no frame decoded") {
        self.ioDeadline = ioDeadline
        self.stalledMeans = stalledMeans
    }

    static func nowMillis() -> Int64 { Int64(monotonicSeconds() * 1000) }

    /// Abandon the work: its blocking calls return, its loops throw `.processing` with this reason.
    func abandon(_ why: String) {
        reason.withLock { $0 = $0 ?? why }
        abandonedFlag.store(true, ordering: .relaxed)
    }
    var abandoned: Bool { abandonedFlag.load(ordering: .relaxed) }

    func madeProgress() { lastProgress.store(Self.nowMillis(), ordering: .relaxed) }
    /// Seconds since the last progress report.
    var idleSeconds: Double { Double(Self.nowMillis() - lastProgress.load(ordering: .relaxed)) / 1000 }

    /// Runs one blocking FFmpeg call under the I/O deadline.
    func io<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        ioStart.store(Self.nowMillis(), ordering: .relaxed)
        defer { ioStart.store(0, ordering: .relaxed) }
        return try body()
    }

    /// What the interrupt callback asks.
    var shouldInterrupt: Bool {
        if Cancellation.abortRequested || abandoned { return true }
        let started = ioStart.load(ordering: .relaxed)
        if started > 0, Double(Self.nowMillis() - started) / 1000 > ioDeadline {
            abandon("an I/O call took longer than \(Int(ioDeadline)) s")
            return true
        }
        return false
    }

    /// Throws when the process is aborting (`.interrupted`) or this work was abandoned (`.processing`).
    func check(_ operation: String, path: String?) throws(VSliceError) {
        try Cancellation.throwIfAborted(operation, path: path)
        if abandoned {
            throw VSliceError(.processing, operation, path: path, reason: reason.withLock { $0 } ?? "abandoned")
        }
    }

    /// The value handed to FFmpeg as the interrupt callback's opaque pointer; valid while `self` lives.
    var opaque: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
}

/// The interrupt callback given to every format context: non-zero means "stop now". Its opaque pointer is
/// the `WorkWatch` of the file's owner (kept alive by that owner), or nil.
let vsliceInterruptCallback: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { opaque in
    if Cancellation.abortRequested { return 1 }
    guard let opaque else { return 0 }
    return Unmanaged<WorkWatch>.fromOpaque(opaque).takeUnretainedValue().shouldInterrupt ? 1 : 0
}

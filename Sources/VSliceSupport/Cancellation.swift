import Foundation
import Synchronization

/// Process-wide stop switch. `requestAbort()` makes every blocking FFmpeg call that has our interrupt
/// callback installed return `AVERROR_EXIT` at its next check, so nothing can hang past a second Ctrl-C.
public enum Cancellation {
    package static let abortFlag = Atomic<Bool>(false)
    package static let stopFlag = Atomic<Bool>(false)

    /// Stop dispatching new work; running work may finish.
    public static func requestStop() { stopFlag.store(true, ordering: .relaxed) }
    /// Abort running work at once.
    public static func requestAbort() {
        stopFlag.store(true, ordering: .relaxed)
        abortFlag.store(true, ordering: .relaxed)
    }
    public static var stopRequested: Bool { stopFlag.load(ordering: .relaxed) }
    public static var abortRequested: Bool { abortFlag.load(ordering: .relaxed) }

    package static func throwIfAborted(_ operation: String, path: String? = nil) throws(VSliceError) {
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

    package let ioDeadline: Double
    private let abandonedFlag = Atomic<Bool>(false)
    private let reason = Mutex<String?>(nil)
    /// Monotonic milliseconds when the current blocking call began, 0 when none runs.
    private let ioStart = Atomic<Int64>(0)
    /// Monotonic milliseconds of the last progress report.
    private let lastProgress = Atomic<Int64>(WorkWatch.nowMillis())

    /// What counts as progress, for the stall message: "no frame decoded", "no frame from the processor".
    package let stalledMeans: String

    public init(ioDeadline: Double = WorkWatch.defaultIODeadline, stalledMeans: String = "no frame decoded") {
        self.ioDeadline = ioDeadline
        self.stalledMeans = stalledMeans
    }

    package static func nowMillis() -> Int64 { Int64(monotonicSeconds() * 1000) }

    /// Abandon the work: its blocking calls return, its loops throw `.processing` with this reason.
    package func abandon(_ why: String) {
        reason.withLock { $0 = $0 ?? why }
        abandonedFlag.store(true, ordering: .relaxed)
    }
    package var abandoned: Bool { abandonedFlag.load(ordering: .relaxed) }

    package func madeProgress() { lastProgress.store(Self.nowMillis(), ordering: .relaxed) }
    /// Seconds since the last progress report.
    package var idleSeconds: Double { Double(Self.nowMillis() - lastProgress.load(ordering: .relaxed)) / 1000 }

    /// Runs one blocking FFmpeg call under the I/O deadline.
    package func io<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        ioStart.store(Self.nowMillis(), ordering: .relaxed)
        defer { ioStart.store(0, ordering: .relaxed) }
        return try body()
    }

    /// What the interrupt callback asks.
    package var shouldInterrupt: Bool {
        if Cancellation.abortRequested || abandoned { return true }
        let started = ioStart.load(ordering: .relaxed)
        if started > 0, Double(Self.nowMillis() - started) / 1000 > ioDeadline {
            abandon("an I/O call took longer than \(Int(ioDeadline)) s")
            return true
        }
        return false
    }

    /// Throws when the process is aborting (`.interrupted`) or this work was abandoned (`.processing`).
    package func check(_ operation: String, path: String?) throws(VSliceError) {
        try Cancellation.throwIfAborted(operation, path: path)
        if abandoned {
            throw VSliceError(.processing, operation, path: path, reason: reason.withLock { $0 } ?? "abandoned")
        }
    }

    /// The value handed to FFmpeg as the interrupt callback's opaque pointer; valid while `self` lives.
    package var opaque: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
}

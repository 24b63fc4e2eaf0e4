import Foundation
import Synchronization
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// `vslice segment`: runs exactly one segment of a planned task in this process, from the task's work folder
/// alone (its `task.json`), and reports the attempt as a trace record file beside the segment. It never opens
/// the job database, so it runs on any machine that sees the work folder and the input.
public enum SegmentWorker {
    /// The segment to run: `--index`, else `SLURM_ARRAY_TASK_ID` (a Slurm job array element), else
    /// `JOB_COMPLETION_INDEX` (a Kubernetes Indexed Job's pod).
    public static func index(given: Int?, environment: [String: String]) throws(VSliceError) -> Int {
        if let given { return given }
        for key in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] {
            guard let text = environment[key] else { continue }
            guard let i = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw VSliceError(.usage, "choose segment", reason: "\(key)='\(text)' is not a segment index")
            }
            return i
        }
        throw VSliceError(.usage, "choose segment",
                          reason: "give --index, or run under a scheduler that sets SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX")
    }

    public struct Outcome: Sendable {
        /// The record written for this attempt (nil when the segment was already done and nothing ran).
        public var record: SegmentTraceRecord?
        /// The done record found for an earlier attempt, when nothing ran.
        public var alreadyDone: SegmentTraceRecord?
    }

    /// Runs segment `index` of the task planned in `workDir`. A segment already done by an earlier attempt
    /// (its record says so and its sealed file matches) is not run again. Every attempt that got as far as
    /// reading the work order leaves a trace record, done or failed, before this returns or throws.
    /// Errors: usage (not a work folder, index out of range), input (input missing, changed since planning,
    /// or unreadable), processing (worth a retry unless `deterministic`), interrupted (a signal). The record's
    /// `deterministic` and `exit_code` follow the executors' policy (RetryPolicy.swift).
    /// A worker that stays up (`WorkerLoop`) passes its kept `--process-persistent` program (`host`) and says
    /// whether this is its process's first element (`firstOfProcess`: only that one's record carries the process's
    /// start, which later elements do not pay).
    package static func run(workDir given: String, index: Int, environment: [String: String],
                           progress: @escaping @Sendable (Int) -> Void = { _ in }, host: PersistentProcessor? = nil,
                           firstOfProcess: Bool = true) throws(VSliceError) -> Outcome {
        let workDir = Paths.absolute(given)
        let order = try WorkOrder.read(workDir: workDir)
        guard (0..<order.elementCount).contains(index) else {
            let pieces = order.audioPieces?.count ?? 0
            throw VSliceError(.usage, "choose segment", path: workDir,
                              reason: "index \(index) is out of range: the task has \(order.plan.segments.count) segments"
                                + (pieces > 0 ? " and \(pieces) audio pieces" : "") + " (0–\(order.elementCount - 1))")
        }
        let earlier = SegmentTraceRecord.all(workDir: workDir).filter { $0.segment == index }
        if let done = earlier.last(where: { $0.sealedFileMatches(workDir: workDir) }) {
            return Outcome(record: nil, alreadyDone: done)
        }
        // A sealed file no done record vouches for (its worker died between sealing and recording) is no one's.
        unlink((workDir as NSString).appendingPathComponent(order.file(ofElement: index)))
        scopeFaultInjection(index: index, firstAttempt: earlier.isEmpty, environment: environment)

        let trace = TraceID.new()
        let startedAt = Date().timeIntervalSince1970
        let t0 = monotonicSeconds(), c0 = processCPUSeconds()
        var record = SegmentTraceRecord(trace: trace, task: order.task, segment: index, status: .failed, error: nil,
                                        exitKind: "processing", exitCode: 1, startedAt: startedAt, endedAt: startedAt,
                                        wallSeconds: 0, cpuSeconds: 0, pid: Int(getpid()), host: Host.name,
                                        engine: .from(environment: environment))
        if firstOfProcess { record.processStartedAt = ProcessClock.startedAt() }
        func measured() {
            record.endedAt = Date().timeIntervalSince1970
            record.wallSeconds = monotonicSeconds() - t0
            record.cpuSeconds = processCPUSeconds() - c0
        }
        let result: SegmentResult
        do throws(VSliceError) {
            result = try attempt(order, index: index, workDir: workDir, trace: trace, environment: environment, startedAt: t0,
                                 progress: progress, host: host)
        } catch {
            record.error = error.description
            record.exitKind = error.kind.rawValue
            record.exitCode = error.workerExitCode
            record.deterministic = error.failsEveryTime
            measured()
            // The failure is what the caller needs to hear; a record that cannot be written adds nothing.
            _ = try? record.write(workDir: workDir)
            throw error
        }
        record.status = .done
        record.exitKind = "ok"
        record.exitCode = 0
        record.framesIn = result.framesProcessed
        record.framesOut = result.framesKept
        record.bytes = result.bytes
        record.checksum = Int64(result.checksum)
        record.file = order.file(ofElement: index)
        record.startupSeconds = result.startupSeconds
        record.flushSeconds = result.flushSeconds
        record.processorStartupSeconds = result.processorCost?.startupSeconds
        record.processorSecondsPerFrame = result.processorCost?.secondsPerFrame
        measured()
        record.cpuSeconds += result.processorCPU
        try record.write(workDir: workDir)
        return Outcome(record: record, alreadyDone: nil)
    }

    /// The attempt itself: the input checked against the work order (and the processor's files), the segment
    /// run (`SegmentAttempt`, its progress written for the coordinator every second) and its file sealed.
    private static func attempt(_ order: WorkOrder, index: Int, workDir: String, trace: TraceID, environment: [String: String],
                                startedAt: Double, progress: @escaping @Sendable (Int) -> Void,
                                host: PersistentProcessor?) throws(VSliceError) -> SegmentResult {
        let file = order.file(ofElement: index)
        let finalPath = (workDir as NSString).appendingPathComponent(file)
        let partPath = (workDir as NSString).appendingPathComponent(".\(file).\(trace.short).part")
        let fingerprint = try Fingerprint.of(order.input)
        guard fingerprint == order.fingerprint else {
            throw VSliceError(.input, "check input", path: order.input,
                              reason: "the input changed since the task was planned (or this node sees another file)")
        }
        // Every open of the input checks it is still this file (not replaced while the segment runs).
        guard let identity = FileIdentity.of(order.input) else { throw FileIdentity.changed(order.input) }
        if let piece = order.audioPiece(ofElement: index) {
            let began = monotonicSeconds()
            let r = try AudioPieceAttempt(input: order.input, identity: identity, piece: piece, partPath: partPath).run()
            try seal(partPath, as: finalPath, workDir: workDir)
            // Its start-up from the attempt's start (the fingerprint check included), as a segment's.
            return SegmentResult(framesProcessed: 0, framesKept: r.packets, bytes: r.bytes, checksum: r.checksum,
                                 startupSeconds: r.startupSeconds.map { $0 + began - startedAt }, flushSeconds: r.flushSeconds)
        }
        var settings = order.settings
        settings.threads = settings.threads ?? threads(environment: environment)
        try ProcessorFiles.check(settings.process)
        // Frames done so far, for the coordinator's progress bar (seg-NNNNN.progress, every second).
        let framesDone = Atomic<Int>(0)
        let progressFile = (workDir as NSString).appendingPathComponent(WorkFolder.progressFileName(index))
        let reporter = PeriodicThread(every: 1) {
            let n = framesDone.load(ordering: .relaxed)
            if n > 0 { try? WorkFolder.writeAtomically(Data("\(trace) \(n)\n".utf8), to: progressFile, durable: false) }
        }
        defer { reporter.stop() }
        let counted: @Sendable (Int) -> Void = { n in
            framesDone.add(n, ordering: .relaxed)
            progress(n)
        }
        let attempt = SegmentAttempt(task: order.task, input: order.input, identity: identity, index: order.index, plan: order.plan,
                                     segment: order.plan.segments[index], settings: settings, workDir: workDir, partPath: partPath,
                                     host: host, environment: environment, progress: counted, cpuClock: processCPUSeconds, startedAt: startedAt)
        let watchdog = StallWatchdog(timeout: order.stallTimeout)
        defer { watchdog.stop() }
        let result = try attempt.run(watchdog: watchdog).result
        try seal(partPath, as: finalPath, workDir: workDir)
        return result
    }

    /// Seals a part file without replacing: when a node was thought lost but its worker went on, the attempt that
    /// seals first wins, and the late one records a failure instead of a second done trace.
    private static func seal(_ partPath: String, as finalPath: String, workDir: String) throws(VSliceError) {
        let sealed = link(partPath, finalPath) == 0 ? 0 : errno
        unlink(partPath)
        if sealed == EEXIST {
            throw VSliceError(.processing, "seal segment", path: finalPath,
                              reason: "another attempt sealed this segment first (this one's node was thought lost); its frames are dropped")
        }
        if sealed != 0 {
            throw VSliceError(.processing, "seal segment", path: finalPath, reason: String(cString: strerror(sealed)))
        }
        FileOps.fsyncDirectory(workDir)
    }

    /// Encoder threads for a worker whose task did not fix `--threads`: the CPUs the scheduler gave it
    /// (a Ray actor's VSLICE_RAY_CPUS, SLURM_CPUS_PER_TASK, else SLURM_CPUS_ON_NODE), else this machine's cores.
    static func threads(environment env: [String: String]) -> Int {
        for key in ["VSLICE_RAY_CPUS", "SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE"] {
            if let n = env[key].flatMap({ Int($0) }), n > 0 { return n }
        }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// For the tests: `VSLICE_FAULT_SEGMENT=I` limits `VSLICE_FAULT` to the worker of segment I, on its first
    /// attempt (no earlier trace record), so a retried element runs clean. Decided per element: a worker that
    /// stays up runs many.
    private static func scopeFaultInjection(index: Int, firstAttempt: Bool, environment: [String: String]) {
        guard let only = environment["VSLICE_FAULT_SEGMENT"] else { return }
        Fault.enabled.withLock { $0 = Int(only) == index && firstAttempt }
    }
}

/// CPU time (user + system) of the whole process, seconds.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

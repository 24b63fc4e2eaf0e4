import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

/// `vslice report TASK`: a finished task's recorded traces, ready to replay (`ScalingModel`), and what the run
/// itself measured.
public struct TaskReport: Sendable {
    public var task: TaskRecord
    public var input: ScalingInput
    /// The segments and audio pieces.
    public var segments: Int
    public var pieces: Int
    /// CPU seconds of every done trace, and of the coordinator's own steps (all but the elements).
    public var cpuSeconds: Double
    public var serialCPUSeconds: Double
    /// From the run's start (its checks before any work) to the publish's end, when one run did it all.
    public var measuredWallSeconds: Double?
    /// How many workers the run had: the most elements that ran at once — in this process, at most this
    /// machine's CPUs (more job slots than CPUs share them).
    public var measuredConcurrency: Int
    /// With `--process`: the program's timing in each video segment's done attempt, and the cost the plan took.
    public var processorTraces: [ProcessorCost] = []
    public var plannedCost: ElementCost? = nil

    /// The coordinator's nodes, in the order the report names them.
    static let beforeNodes: [Node] = [.probe, .plan, .reduce], afterNodes: [Node] = [.mux, .verify, .publish]

    /// Reads a task's traces: every element's done attempt (its CPU time and fixed costs), the coordinator's
    /// steps, the scheduler's latency. A task whose elements are not all done has nothing to replay (usage error).
    public static func load(store: JobStore, task id: TaskID) throws(VSliceError) -> TaskReport {
        guard let t = try store.task(id) else { throw VSliceError(.usage, "report", reason: "no task '\(id)'") }
        let traces = try store.traces(task: t.id)
        let done = traces.filter { $0.status == .done }
        let rows = try store.segments(task: t.id) + store.audioPieces(task: t.id)
        let unfinished = rows.filter { $0.status != .done }.count
        guard !rows.isEmpty, unfinished == 0 else {
            throw VSliceError(.usage, "report task \(t.id.short)",
                              reason: rows.isEmpty ? "the task has no segments yet: nothing to replay"
                                  : "\(unfinished) of its \(rows.count) segments and audio pieces are not done: nothing to replay yet")
        }
        let last = Dictionary(done.compactMap { tr in tr.segmentId.map { ($0, tr) } }, uniquingKeysWith: { a, b in
            (a.endedAt ?? 0) >= (b.endedAt ?? 0) ? a : b
        })
        let plan = try store.events(task: t.id).first { $0.node == Node.plan.rawValue }?.detail
            .flatMap { try? JSONDecoder().decode(Plan.self, from: Data($0.utf8)) }
        let remote = rows.contains { last[$0.id]?.engine != nil }
        let staysUp = remote && t.storedRequest?.executor.workersStayUp == true
        var elements = Self.elements(rows, last: last, plan: plan, remote: remote && !staysUp)
        // Workers that stay up: the process start is the worker's (its first element's record carries it), paid once each.
        let workerStart = staysUp ? median(elements.map(\.processSeconds).filter { $0 > 0 }) ?? 0 : nil
        if staysUp { for k in elements.indices { elements[k].processSeconds = 0 } }
        var input = ScalingInput(before: steps(beforeNodes, done, t.id), elements: elements, beside: steps([.audio], done, t.id, cpu: true),
                                 after: steps(afterNodes, done, t.id), executor: t.storedRequest?.executor.kind.rawValue ?? "local")
        input.workerStartSeconds = workerStart
        input.analyses = Self.analysisElements(try store.analyses(task: t.id), last: last)
        if remote { Self.latencies(rows.compactMap { last[$0.id] }, into: &input) }
        let elementTraces = Set(rows.compactMap { last[$0.id]?.id })
        let processor = rows.filter { $0.eventId.isNode(.encode) }.compactMap { last[$0.id] }.compactMap { tr in
            tr.processorStartupSeconds.map { ProcessorCost(startupSeconds: $0, secondsPerFrame: tr.processorSecondsPerFrame ?? 0, framesTimed: 0) }
        }
        let cpu = done.map { $0.cpuSeconds ?? 0 }.reduce(0, +)
        let serialCPU = done.filter { $0.segmentId == nil }.map { $0.cpuSeconds ?? 0 }.reduce(0, +)
        return TaskReport(task: t, input: input, segments: rows.filter { $0.eventId.isNode(.encode) }.count,
                          pieces: rows.filter { $0.eventId.isNode(.audio) }.count,
                          cpuSeconds: cpu, serialCPUSeconds: serialCPU, measuredWallSeconds: measuredWall(traces, done: done),
                          measuredConcurrency: workers(traces.filter { elementTraces.contains($0.id) }, local: !remote),
                          processorTraces: processor, plannedCost: plan?.elementCost)
    }

    /// Each analysis element's done attempt, in the local executor's order (video segments, then audio pieces).
    static func analysisElements(_ rows: [SegmentRecord], last: [SegmentID: TraceRecord]) -> [ScalingInput.Element] {
        rows.compactMap { r in
            guard let tr = last[r.id] else { return nil }
            let wall = tr.wallSeconds ?? 0
            return ScalingInput.Element(kind: .analysis, index: r.ord, cpuSeconds: tr.cpuSeconds ?? wall, wallSeconds: wall,
                                        ledgerSeconds: max(0, (tr.endedAt ?? tr.startedAt) - tr.startedAt - wall))
        }
    }

    /// Each element's done attempt, in the executor's dispatch order: the local one's (video segments longest
    /// first, by frames processed, then the audio pieces; workers that stay up claim in that order too), or a
    /// scheduler's (the array's index order).
    static func elements(_ rows: [SegmentRecord], last: [SegmentID: TraceRecord], plan: Plan?, remote: Bool) -> [ScalingInput.Element] {
                func processed(_ r: SegmentRecord) -> Int {
            plan.flatMap { $0.segments.indices.contains(r.ord) ? $0.segments[r.ord].processedCount : nil } ?? r.framesPlanned
        }
        let video = rows.filter { !$0.eventId.isNode(.audio) }
        let pieces = rows.filter { $0.eventId.isNode(.audio) }.sorted { $0.ord < $1.ord }
        let ordered = (remote ? video.sorted { $0.ord < $1.ord }
                       : video.sorted { (processed($0), -$0.ord) > (processed($1), -$1.ord) }) + pieces
        return ordered.compactMap { r in
            guard let tr = last[r.id] else { return nil }
            let wall = tr.wallSeconds ?? 0
            return ScalingInput.Element(kind: r.eventId.isNode(.audio) ? .audioPiece : .segment, index: r.ord,
                                        cpuSeconds: tr.cpuSeconds ?? wall, wallSeconds: wall, startupSeconds: tr.startupSeconds ?? 0,
                                        flushSeconds: tr.flushSeconds ?? 0, processSeconds: tr.processSeconds ?? 0,
                                        ledgerSeconds: tr.engine == nil ? max(0, (tr.endedAt ?? tr.startedAt) - tr.startedAt - wall) : 0)
        }
    }

    /// The latest done trace of each of these nodes: its wall time (I/O included: nothing else runs then), or with
    /// `cpu` its CPU time (a step that ran beside the elements, whose wall time they stretched).
    static func steps(_ nodes: [Node], _ done: [TraceRecord], _ task: TaskID, cpu: Bool = false) -> [ScalingInput.Step] {
        nodes.compactMap { node in
            let id = task.event(node)
            return done.filter { $0.eventId == id && $0.segmentId == nil }.max { ($0.endedAt ?? 0) < ($1.endedAt ?? 0) }
                .map { ScalingInput.Step(node: node.rawValue, seconds: (cpu ? $0.cpuSeconds : nil) ?? $0.wallSeconds ?? 0) }
        }
    }

    /// The scheduler's latencies of the remote elements, medians: for those started when the encode began (their
    /// latency counts from their submission) and for the others (from the end of the element before); and the
    /// collection of their records.
    static func latencies(_ traces: [TraceRecord], into input: inout ScalingInput) {
        var first: [Double] = [], later: [Double] = []
        for tr in traces {
            guard let latency = tr.schedulerSeconds else { continue }
            let processStart = tr.startedAt - (tr.processSeconds ?? 0)
            if let s = tr.submittedAt, abs(processStart - s - latency) < 0.01 { first.append(latency) } else { later.append(latency) }
        }
        input.firstWaveLatency = median(first) ?? median(later) ?? 0
        input.laterLatency = median(later) ?? input.firstWaveLatency
        input.collectSeconds = median(traces.compactMap(\.collectedSeconds)) ?? 0
    }

    static func median(_ v: [Double]) -> Double? {
        guard !v.isEmpty else { return nil }
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// From the start of the run's checks (its probe trace's start less its `process_seconds`) to the end of its
    /// publish; nil when the task ran more than once (a resume) or did not publish.
    static func measuredWall(_ traces: [TraceRecord], done: [TraceRecord]) -> Double? {
        let probes = traces.filter { $0.eventId.isNode(.probe) }
        guard probes.count == 1, let probe = probes.first,
              let end = done.first(where: { $0.eventId.isNode(.publish) })?.endedAt else { return nil }
        return end - (probe.startedAt - (probe.processSeconds ?? 0))
    }

    /// How many workers ran these attempts: as many as ran at once; in this process (`local`), at most this
    /// machine's CPUs.
    static func workers(_ traces: [TraceRecord], local: Bool) -> Int {
        let most = concurrency(traces)
        return local ? min(most, ProcessInfo.processInfo.activeProcessorCount) : most
    }

    /// The most of these attempts that ran at once (each from its process's start to its end).
    static func concurrency(_ traces: [TraceRecord]) -> Int {
        var events: [(Double, Int)] = []
        for tr in traces {
            events.append((tr.startedAt - (tr.processSeconds ?? 0), 1))
            events.append((tr.endedAt ?? tr.startedAt, -1))
        }
        var now = 0, most = 0
        for (_, d) in events.sorted(by: { ($0.0, $0.1) < ($1.0, $1.1) }) {
            now += d
            most = max(most, now)
        }
        return most
    }
}

extension TaskReport {
    /// The prediction for the number of workers the run had (the most elements at once), with its error against
    /// the measured wall time.
    public var check: (workers: Int, predicted: Double, measured: Double)? {
        guard let measured = measuredWallSeconds, measuredConcurrency > 0 else { return nil }
        let p = ScalingModel.curve(input, workers: [measuredConcurrency])[0]
        return (measuredConcurrency, p.wallSeconds, measured)
    }

    /// What `vslice report` prints: the task, its serial steps and fixed costs, the check against the run, and
    /// one line per number of workers.
    public func text(_ points: [ScalingPoint]) -> String {
        func ms(_ v: [Double]) -> String { Self.median(v).map { String(format: "%.0f ms", $0 * 1000) } ?? "—" }
        let e = input.elements
        let jobs = task.storedRequest?.settings.jobs
        var lines = [String(format: "task %@ (%@%@): %d segments%@, %.1f CPU-s; serial share of the CPU %.2f %% (%.2f CPU-s)",
                            task.id.short, input.executor, jobs.map { ", --jobs \($0)" } ?? "", segments,
                            (pieces > 0 ? " and \(pieces) audio pieces" : "") + (input.analyses.isEmpty ? "" : ", \(input.analyses.count) analyses"), cpuSeconds,
                            cpuSeconds > 0 ? 100 * serialCPUSeconds / cpuSeconds : 0, serialCPUSeconds)]
        let steps = (input.before + input.after).map { String(format: "%@ %.2f", $0.node, $0.seconds) }
        let beside = input.beside.map { String(format: "; beside the elements: %@ %.2f s", $0.node, $0.seconds) }.joined()
        lines.append(String(format: "serial steps %.2f s (%@)%@", input.serialSeconds, steps.joined(separator: ", "), beside))
        var fixed = "per element (median): start-up \(ms(e.map(\.startupSeconds))), flush \(ms(e.map(\.flushSeconds)))"
        if input.executor == "local" {
            fixed += ", ledger writes \(ms(e.map(\.ledgerSeconds)))"
        } else {
            fixed += input.workerStartSeconds.map { String(format: ", worker start %.0f ms (once per worker: workers stay up)", $0 * 1000) }
                ?? ", worker start \(ms(e.map(\.processSeconds)))"
            fixed += String(format: "; scheduler latency %.0f ms (first wave), %.0f ms (after an element), record collected after %.0f ms",
                            input.firstWaveLatency * 1000, input.laterLatency * 1000, input.collectSeconds * 1000)
        }
        lines.append(fixed)
        if let p = processorLine { lines.append(p) }
        if let c = check {
            lines.append(String(format: "measured: %.2f s wall on %d worker%@; predicted for %d: %.2f s (%+.1f %%)",
                                c.measured, c.workers, c.workers == 1 ? "" : "s", c.workers, c.predicted, 100 * (c.predicted - c.measured) / c.measured))
        }
        lines.append("")
        lines.append("workers    wall s  speed-up  efficiency  serial  encode s   work  fixed   idle")
        for p in points {
            lines.append(String(format: "%7d  %8.2f  %7.2f×  %9.1f %%  %5.1f %%  %8.2f  %4.0f %%  %4.0f %%  %4.0f %%", p.workers, p.wallSeconds,
                                p.speedup, 100 * p.efficiency, 100 * p.serialSeconds / max(p.wallSeconds, 1e-9), p.encodeSeconds,
                                100 * p.workShare, 100 * p.fixedShare, 100 * p.idleShare))
        }
        lines.append("")
        lines.append("serial = share of the wall time in the coordinator's steps; work, fixed, idle = shares of the workers' time "
                     + "during the encode (fixed: start-up, worker start, scheduler latency, ledger writes)")
        return lines.joined(separator: "\n")
    }
}

extension TaskReport {
    /// "processor (median of 4 segments' traces): start-up 430 ms, 183 ms of work per frame; the plan counted
    /// 420 ms and 180 ms (−2 %, −2 %)": what the program cost in the run, against what the check before any work
    /// timed.
    var processorLine: String? {
        guard !processorTraces.isEmpty, let startup = Self.median(processorTraces.map(\.startupSeconds)),
              let work = Self.median(processorTraces.map(\.secondsPerFrame)) else { return nil }
        var line = String(format: "processor (median of %d segments' traces): start-up %.0f ms, %.3g ms of work per frame",
                          processorTraces.count, startup * 1000, work * 1000)
        if let planned = plannedCost?.processor {
            func delta(_ a: Double, _ b: Double) -> String { b > 0 ? String(format: "%+.0f %%", 100 * (a - b) / b) : "—" }
            line += String(format: "; the plan counted %.0f ms and %.3g ms (%@, %@)", planned.startupSeconds * 1000,
                           planned.secondsPerFrame * 1000, delta(planned.startupSeconds, startup), delta(planned.secondsPerFrame, work))
        } else {
            line += "; the plan did not count it"
        }
        return line
    }
}

import Foundation
import VSliceSupport

/// What `vslice report` replays: a finished task's recorded steps, as the ledger has them.
public struct ScalingInput: Codable, Sendable, Equatable {
    /// A step of the coordinator's alone (wall seconds: I/O included).
    public struct Step: Codable, Sendable, Equatable {
        public var node: String
        public var seconds: Double
        public init(node: String, seconds: Double) {
            self.node = node
            self.seconds = seconds
        }
    }

    /// One element (a video segment or an audio piece) as its done attempt ran.
    public struct Element: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable { case segment, audioPiece = "audio_piece", analysis }
        public var kind: Kind
        public var index: Int
        /// CPU seconds of the attempt (its start-up and flush included), and its wall seconds.
        public var cpuSeconds: Double
        public var wallSeconds: Double? = nil
        /// Wall seconds of its start-up and flush (see `FixedCost`), where measured.
        public var startupSeconds: Double = 0
        public var flushSeconds: Double = 0
        /// A worker's process start (remote elements).
        public var processSeconds: Double = 0
        /// Around the attempt, on its job slot: the ledger's writes that open and close its trace (local elements).
        public var ledgerSeconds: Double = 0

        public init(kind: Kind, index: Int, cpuSeconds: Double, wallSeconds: Double? = nil, startupSeconds: Double = 0,
                    flushSeconds: Double = 0, processSeconds: Double = 0, ledgerSeconds: Double = 0) {
            self.kind = kind
            self.index = index
            self.cpuSeconds = cpuSeconds
            self.wallSeconds = wallSeconds
            self.startupSeconds = startupSeconds
            self.flushSeconds = flushSeconds
            self.processSeconds = processSeconds
            self.ledgerSeconds = ledgerSeconds
        }

        /// The CPU seconds of its start-up: its wall seconds scaled by the attempt's CPU ÷ wall (a job slot that
        /// shared its CPU with others started up no dearer, only slower).
        package var startupCPU: Double {
            let scale = wallSeconds.map { $0 > 0 ? min(1, cpuSeconds / $0) : 1 } ?? 1
            return min(cpuSeconds, startupSeconds * scale)
        }
    }

    /// Probe (with the checks before any work) and plan: before any element.
    public var before: [Step]
    /// The elements in the executor's dispatch order.
    public var elements: [Element]
    /// The audio node (tracks not in pieces, copies, subtitles): beside the elements, on a CPU of the
    /// coordinator's (its CPU time).
    public var beside: [Step] = []
    /// Mux (with the join of the audio pieces), verify, publish: after the last element.
    public var after: [Step]
    /// The analysis elements (`--analyze`, `--loudness`): a phase of their own before the encode's (the reduce
    /// waits for all of them), on the same workers.
    public var analyses: [Element] = []
    /// The scheduler's latency (remote elements): for an element started on an idle worker when the encode
    /// begins (the first wave: from the submission), and for one started when an element before it ended.
    public var firstWaveLatency: Double = 0
    public var laterLatency: Double = 0
    /// From the last element's end until the coordinator took in its record (its polling; remote elements).
    public var collectSeconds: Double = 0
    /// "local", "slurm", "external".
    public var executor: String = "local"
    /// Workers that stay up (`--workers-stay-up`, Ray): a worker's process start, paid once per worker (its first
    /// element), not per element; nil when every element is a process of its own.
    public var workerStartSeconds: Double? = nil

    public init(before: [Step], elements: [Element], beside: [Step] = [], after: [Step], firstWaveLatency: Double = 0,
                laterLatency: Double = 0, collectSeconds: Double = 0, executor: String = "local") {
        self.before = before
        self.elements = elements
        self.beside = beside
        self.after = after
        self.firstWaveLatency = firstWaveLatency
        self.laterLatency = laterLatency
        self.collectSeconds = collectSeconds
        self.executor = executor
    }

    public var serialSeconds: Double { (before + after).map(\.seconds).reduce(0, +) }
}

/// The prediction for one number of workers (`vslice report --json`: one object each).
public struct ScalingPoint: Codable, Sendable, Equatable {
    public var workers: Int
    /// Predicted wall time of the whole task.
    public var wallSeconds: Double
    /// The wall time with one worker ÷ this one's.
    public var speedup: Double
    /// The coordinator's serial steps before and after the elements (probe and checks, plan, mux, verify, publish).
    public var serialSeconds: Double
    /// From the first element's dispatch until the last element's record is in (the audio node beside it included).
    public var encodeSeconds: Double
    /// `speedup ÷ workers`.
    public var efficiency: Double
    /// Of the workers' time during the encode (workers × `encodeSeconds`): the elements' work (CPU past their
    /// start-up), their fixed costs (start-up, process start, scheduler latency, ledger writes), and idle time (a
    /// worker with nothing left to do, the collection of the last record).
    public var workShare: Double
    public var fixedShare: Double
    public var idleShare: Double
}

/// Replays a task's elements on N workers: each worker runs one element at a time; an element goes, in the
/// executor's dispatch order, to the worker that is free first; on a worker it takes the scheduler's latency (the
/// first wave's for a worker's first element, the later one's after that), its process start, its CPU time and
/// its ledger writes; a worker that stays up pays its process start once, before its first element. The task's wall time is its serial steps before, the encode (the last worker's end, plus the
/// collection of the last record; or the audio node beside it, if longer), and its serial steps after.
public enum ScalingModel {
    package struct Replay {
        package var encode: Double
        package var work: Double
        package var fixed: Double
    }

    package static func replay(_ input: ScalingInput, workers n: Int) -> Replay {
        let analysis = phase(input.analyses, input, workers: n)
        let encode = phase(input.elements, input, workers: n)
        let beside = input.beside.map(\.seconds).reduce(0, +)
        return Replay(encode: max(analysis.encode + encode.encode, beside), work: analysis.work + encode.work, fixed: analysis.fixed + encode.fixed)
    }

    /// One phase of elements on `n` workers, each taking the next element when it is free.
    private static func phase(_ elements: [ScalingInput.Element], _ input: ScalingInput, workers n: Int) -> Replay {
        let n = max(1, n)
        var free = [Double](repeating: 0, count: n)
        var used = [Bool](repeating: false, count: n)
        var work = 0.0, fixed = 0.0
        for e in elements {
            var w = 0
            for k in 1..<n where free[k] < free[w] { w = k }
            let latency = used[w] ? input.laterLatency : input.firstWaveLatency
            let startup = e.startupCPU
            let f = latency + e.processSeconds + (used[w] ? 0 : input.workerStartSeconds ?? 0) + startup + e.ledgerSeconds
            free[w] += f + e.cpuSeconds - startup
            used[w] = true
            work += e.cpuSeconds - startup
            fixed += f
        }
        let last = (free.max() ?? 0) + (elements.isEmpty ? 0 : input.collectSeconds)
        return Replay(encode: last, work: work, fixed: fixed)
    }

    /// The predictions for these numbers of workers.
    public static func curve(_ input: ScalingInput, workers: [Int]) -> [ScalingPoint] {
        let serial = input.serialSeconds
        let one = serial + replay(input, workers: 1).encode
        return workers.map { n in
            let r = replay(input, workers: n)
            let wall = serial + r.encode
            let capacity = Double(max(1, n)) * r.encode
            let speedup = wall > 0 ? one / wall : 1
            return ScalingPoint(workers: n, wallSeconds: wall, speedup: speedup, serialSeconds: serial, encodeSeconds: r.encode,
                                efficiency: speedup / Double(max(1, n)),
                                workShare: capacity > 0 ? r.work / capacity : 0, fixedShare: capacity > 0 ? r.fixed / capacity : 0,
                                idleShare: capacity > 0 ? max(0, 1 - (r.work + r.fixed) / capacity) : 0)
        }
    }

    /// 1, 2, 4, … 256.
    public static let defaultWorkers = (0...8).map { 1 << $0 }
}

import CFFmpeg
import Foundation
import Synchronization
import VSliceModel
import VSliceSupport

/// Runs the `--process` program once, before any work, on the first few frames of the input (after `--vf`), as
/// the encoder is checked: a missing module, a wrong format, a wrong frame count or a size the encoder refuses
/// is a usage error (exit 2) with the program's last stderr lines, before a task or a work folder exists. What
/// it learns — the program's output size, pixel format and rate — is what every segment's program must put out.
public enum ProcessorCheck {
    /// Frames the program is run on.
    public static let frames = 5

    public static func run(source: String, index: VideoIndex, settings: TranscodeSettings, expect: FileIdentity? = nil,
                           muxer: String? = nil, stallTimeout: Double = 300,
                           onStderrLine: (@Sendable (String) -> Void)? = nil) throws(VSliceError) -> ProcessorOutput {
        try measure(source: source, index: index, settings: settings, expect: expect, muxer: muxer, stallTimeout: stallTimeout,
                    onStderrLine: onStderrLine).output
    }

    /// The check, and what it timed of the program (`ProcessorCost`: its start-up, and its work per frame over
    /// the frames after its first; nil when it put out fewer than two frames). The timing costs nothing beyond
    /// the check itself, unless `timing` asks for programs at once: the segments run `--jobs` programs at once,
    /// and one program alone starts and works faster than each of several sharing the machine (measured here:
    /// two at once took 1.5× the start-up and 1.6× the work per frame of one alone). So `timing.programs`
    /// copies of the check run at once, as the segments will run (the wall time of one check, with that many
    /// cores), and their timings are averaged; only the first one's output is checked and learnt. `timing.gpu`:
    /// the device the check's programs get (`VSLICE_GPU`, `CUDA_VISIBLE_DEVICES`): the first job slot's.
    public static func measure(source: String, index: VideoIndex, settings: TranscodeSettings, expect: FileIdentity? = nil,
                               muxer: String? = nil, stallTimeout: Double = 300, timing: Timing = Timing(),
                               onStderrLine: (@Sendable (String) -> Void)? = nil) throws(VSliceError) -> (output: ProcessorOutput, cost: ProcessorCost?) {
        guard let process = settings.process else {
            throw VSliceError(.usage, "check --process", reason: "no --process given")
        }
        do throws(VSliceError) {
            let watchdog = StallWatchdog(timeout: stallTimeout)
            defer { watchdog.stop() }
            let check = Check(source: source, index: index, settings: settings, process: process, expect: expect, muxer: muxer,
                              gpu: timing.gpu, onStderrLine: onStderrLine)
            let companions = Companions(check: check, count: max(0, timing.programs - 1), watchdog: watchdog)
            let main: (output: ProcessorOutput, cost: ProcessorCost?)
            let t0 = monotonicSeconds()
            do throws(VSliceError) {
                main = try watchdog.watching(check.watch) { () throws(VSliceError) in try check.full() }
            } catch {
                companions.abandon()
                throw error
            }
            // A companion far behind the check (a device that runs one program at a time) is not waited for.
            var costs = companions.costs(within: max(5, 2 * (monotonicSeconds() - t0)))
            if let c = main.cost { costs.insert(c, at: 0) }
            return (main.output, ProcessorCost.mean(of: costs))
        } catch {
            if error.kind == .interrupted || error.kind == .input { throw error }
            let n = min(frames, index.pts.count)
            let what = process.isPersistent ? "two streams (the first \(n) frames, then the next ones) kept loaded" : "the first \(n) frames of the input"
            var e = VSliceError(.usage, "check --process", reason: "the processor failed on \(what): \(error.reason)")
            e.everyInput = error.everyInput
            throw e
        }
    }

    /// How the check times the program: `programs` at once (as many as the segments will run at once on one
    /// machine, or on one device), on device `gpu`.
    public struct Timing: Sendable {
        public var programs: Int
        public var gpu: String?
        public init(programs: Int = 1, gpu: String? = nil) {
            self.programs = programs
            self.gpu = gpu
        }
    }

    /// The cores a processor has beside the others running at once (`--jobs`): `VSLICE_THREADS`, and
    /// OpenMP's `OMP_NUM_THREADS` (PyTorch on the CPU, BLAS) unless the user set it. Without them a program
    /// that spreads over every core runs `--jobs` times over the machine.
    package static func threadEnvironment(_ threads: Int, inherited: [String: String]) -> [String: String] {
        var env = ["VSLICE_THREADS": String(threads)]
        if inherited["OMP_NUM_THREADS"] == nil { env["OMP_NUM_THREADS"] = String(threads) }
        return env
    }
}

/// One run of the check: the settings it needs, and a stream of frames through the program.
private struct Check: Sendable {
    var source: String
    var index: VideoIndex
    var settings: TranscodeSettings
    var process: ProcessorSettings
    var expect: FileIdentity?
    var muxer: String?
    var gpu: String?
    var onStderrLine: (@Sendable (String) -> Void)?
    var watch = WorkWatch(stalledMeans: "no frame from the processor")
    /// A companion that only times the program: its output is not checked against the encoder.
    var timingOnly = false

    /// The whole check: one stream, or two kept loaded.
    func full() throws(VSliceError) -> (output: ProcessorOutput, cost: ProcessorCost?) {
        process.isPersistent ? try twoStreams() : try run(Stream(frames: 0..<min(ProcessorCheck.frames, index.pts.count)))
    }

    /// Source frames through the program, as segment `segment` (kept loaded: on `host`, learnt output `expected`).
    struct Stream {
        var frames: Range<Int>
        var segment = 0
        var host: PersistentProcessor? = nil
        var expected: ProcessorOutput? = nil
    }

    /// `--process-persistent`: two streams on one program — the first frames, then the next ones (or the same again
    /// on a video that short), each with its own header — and its exit at the end of its input. A program that
    /// cannot take a second header fails here. Its start-up is the first stream's; its work per frame is timed over
    /// both.
    func twoStreams() throws(VSliceError) -> (output: ProcessorOutput, cost: ProcessorCost?) {
        let host = PersistentProcessor(settings: process)
        defer { host.discard() }
        let n = min(ProcessorCheck.frames, index.pts.count)
        let first = try run(Stream(frames: 0..<n, segment: 0, host: host))
        let second = try run(Stream(frames: index.pts.count > n ? n..<min(index.pts.count, 2 * n) : 0..<n, segment: 1, host: host,
                                    expected: first.output))
        guard host.starts == 1 else {
            throw VSliceError(.processing, "check --process", reason: "the processor ended after its first stream (a program kept loaded "
                              + "reads the next stream's header and goes on)")
        }
        let how = host.close(grace: 10)
        guard how == .exited(0) else {
            throw VSliceError(.processing, "check --process", reason: "at the end of its input the processor "
                              + (how.map { "ended with \($0)" } ?? "did not exit within 10 s") + " (a program kept loaded exits 0 there)")
        }
        guard var cost = first.cost else { return (first.output, nil) }
        if let more = second.cost, more.framesTimed > 0 {
            let frames = cost.framesTimed + more.framesTimed
            cost.secondsPerFrame = (cost.secondsPerFrame * Double(cost.framesTimed) + more.secondsPerFrame * Double(more.framesTimed)) / Double(frames)
            cost.framesTimed = frames
        }
        return (first.output, cost)
    }

    func run(_ stream: Stream) throws(VSliceError) -> (output: ProcessorOutput, cost: ProcessorCost?) {
        let a = stream.frames.lowerBound, b = stream.frames.upperBound - 1, n = stream.frames.count
        let segment = SegmentPlan.checkRun(a, b, index: index, number: stream.segment, decodeFrom: Plan.decodeStart(for: a, index: index))
        let src = try SegmentSource(path: source, index: index, segment: segment, threads: 1, watch: watch, expect: expect,
                                    progress: { _ in })
        src.decodingIsProgress = false
        var stages: [any FrameProcessor] = []
        var geometry = src.geometry
        if let vf = settings.videoFilter {
            let graph = try VideoFilterGraph(description: vf, decoder: src.decoder.ctx, timeBase: src.timeBase,
                                             frameRate: geometry.frameRate, outputFormats: [], path: source)
            let stage = FilterStage(graph: graph, inputTimeBase: src.timeBase, colors: geometry)
            stages.append(stage)
            geometry = stage.output
        }
        var env = ProcessInfo.processInfo.environment
        env.merge(ProcessorCheck.threadEnvironment(settings.threadsPerJob, inherited: env)) { $1 }
        // VSLICE_SEGMENT -1: no segment (a program that keys on segment 0 is not fooled by the check).
        for (k, v) in ["VSLICE_TASK": "check", "VSLICE_SEGMENT": "-1", "VSLICE_SEGMENTS": "1", "VSLICE_FIRST_FRAME": String(a),
                       "VSLICE_FRAMES": String(n), "VSLICE_BUFFER_BEFORE": "0", "VSLICE_BUFFER_AFTER": "0", "VSLICE_CHECK": "1"] {
            env[k] = v
        }
        if let gpu {
            env["VSLICE_GPU"] = gpu
            env["CUDA_VISIBLE_DEVICES"] = gpu
        }
        let supported = SegmentSink.supportedPixelFormats(codec: settings.videoCodec)
        var spec = ProcessorSpec(settings: process, label: "check", expected: stream.expected, environment: env, logPath: nil,
                                 onStderrLine: timingOnly ? nil : onStderrLine, encoderFormats: supported, preferredFormat: geometry.pixelFormat,
                                 inputFrames: settings.videoFilter == nil ? n : nil)
        spec.host = stream.host
        spec.streamTags = stream.host == nil ? [] : ProcessorSpec.tags(segment: stream.segment, firstFrame: a, frames: n, before: 0, after: 0)
        let external = try ExternalProcessor(spec, input: geometry, watch: watch, path: source)
        stages.append(external)
        let first = Frame()
        var got = false
        let chain = StageChain(stages) { (frame) throws(VSliceError) in
            if !got { got = true; try ffCheck(av_frame_ref(first.ptr, frame.ptr), "keep a frame") }
        }
        try src.run { (frame) throws(VSliceError) in try chain.push(frame) }
        try chain.finish(end: src.end)
        guard got, let learnt = external.learnt else {
            throw VSliceError(.processing, "check --process", reason: "the processor put out no frame for \(external.framesIn) input frames")
        }
        let cost = external.timedCost
        if stream.expected == nil && !timingOnly { try EncoderCheck.checkProcessed(first, geometry: external.output, settings: settings, muxer: muxer) }
        return (learnt, cost)
    }
}

/// The check's companions: copies of it run at once beside it, for their timing only. A companion that fails
/// leaves its timing out (the check itself says what is wrong with the program).
private final class Companions: Sendable {
    private let runs: [(watch: WorkWatch, thread: WorkerPool.Joinable)]
    private let timed = Timed()

    private final class Timed: Sendable {
        let costs = Mutex<[Int: ProcessorCost]>([:])
    }

    init(check: Check, count: Int, watchdog: StallWatchdog) {
        let timed = timed
        var runs: [(watch: WorkWatch, thread: WorkerPool.Joinable)] = []
        for k in 0..<count {
            var copy = check
            copy.watch = WorkWatch(stalledMeans: "no frame from the processor")
            copy.timingOnly = true
            runs.append((copy.watch, WorkerPool.spawn { [copy, timed] () throws(VSliceError) in
                let c = try watchdog.watching(copy.watch) { () throws(VSliceError) in try copy.full() }.cost
                if let c { timed.costs.withLock { $0[k] = c } }
            }))
        }
        self.runs = runs
    }

    /// Stops them (the check failed).
    func abandon() {
        for r in runs {
            r.watch.abandon("the check failed")
            _ = r.thread.wait()
        }
    }

    /// Waits for them, `seconds` at most (then stops the rest): the timings of those that ended well in time.
    func costs(within seconds: Double) -> [ProcessorCost] {
        let deadline = DispatchTime.now() + seconds
        let late = runs.indices.filter { runs[$0].thread.group.wait(timeout: deadline) == .timedOut }
        for k in late { runs[k].watch.abandon("slower than the check") }
        let ok = runs.indices.filter { !late.contains($0) && runs[$0].thread.wait() == nil }
        for k in late { _ = runs[k].thread.wait() }
        return timed.costs.withLock { t in ok.compactMap { t[$0] } }
    }
}

extension EncoderCheck {
    /// Opens the video encoder for the processor's frames (their size and format) and encodes one: a size the
    /// encoder refuses (odd sides for 4:2:0, beyond its limits) is a usage error naming the size.
    package static func checkProcessed(_ frame: Frame, geometry g: FrameGeometry, settings: TranscodeSettings, muxer: String?) throws(VSliceError) {
        let failure = capturing { () -> VSliceError? in
            do throws(VSliceError) {
                let encoder = try Encoder(name: settings.videoCodec, path: "(encoder check)")
                let c = encoder.ctx
                c.pointee.width = g.width
                c.pointee.height = g.height
                c.pointee.pix_fmt = g.pixelFormat
                c.pointee.sample_aspect_ratio = g.sampleAspect
                c.pointee.time_base = g.timeBase
                c.pointee.framerate = g.frameRate.num > 0 ? g.frameRate : AVRational(num: 25, den: 1)
                c.pointee.thread_count = Int32(settings.threadsPerJob)
                c.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
                if let b = settings.videoBitrate { c.pointee.bit_rate = b }
                try encoder.open(options: settings.videoEncoderOptions)
                return try encodeTestFrame(frame, encoder, muxer: muxer)
            } catch {
                return error
            }
        }
        guard let failure else { return }
        throw VSliceError(.usage, "check --process",
                          reason: "\(settings.videoCodec) cannot encode the processor's \(g.width)x\(g.height) \(g.pixelFormatName) frames: \(why(failure))")
    }
}

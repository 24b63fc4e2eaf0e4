import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// What one segment attempt did (recorded in its trace).
public struct SegmentResult: Codable, Sendable {
    public var framesProcessed: Int
    public var framesKept: Int
    public var bytes: Int64
    /// The segment file's trailer checksum (recorded so resume can tell a damaged file).
    public var checksum: UInt32
    /// CPU seconds the `--process` program used (0 without one).
    public var processorCPU: Double = 0
    /// Wall seconds from the attempt's start (`SegmentPipeline.origin`) until the source handed on its first
    /// frame, and from the end of stream sent to the encoder until the file was sealed (see `FixedCost`).
    public var startupSeconds: Double? = nil
    public var flushSeconds: Double? = nil
    /// What the `--process` program cost in this attempt, timed as the check before any work times it.
    public var processorCost: ProcessorCost? = nil

    package init(framesProcessed: Int, framesKept: Int, bytes: Int64, checksum: UInt32, processorCPU: Double = 0,
                 startupSeconds: Double? = nil, flushSeconds: Double? = nil) {
        self.framesProcessed = framesProcessed
        self.framesKept = framesKept
        self.bytes = bytes
        self.checksum = checksum
        self.processorCPU = processorCPU
        self.startupSeconds = startupSeconds
        self.flushSeconds = flushSeconds
    }
}

/// How a segment's `--process` program runs: what it must put out (learnt before the task), its environment,
/// where its stderr goes.
package struct ProcessorRun {
    package var output: ProcessorOutput
    package var environment: [String: String]
    package var logPath: String?
    package var onStderrLine: (@Sendable (String) -> Void)? = nil
    /// `--process-persistent`: the job slot's program, kept loaded across its segments (nil: one for this segment
    /// alone, as a `vslice segment` worker runs it).
    package var host: PersistentProcessor? = nil

    package init(output: ProcessorOutput, environment: [String: String], logPath: String? = nil, onStderrLine: (@Sendable (String) -> Void)? = nil,
                 host: PersistentProcessor? = nil) {
        self.host = host
        self.output = output
        self.environment = environment
        self.logPath = logPath
        self.onStderrLine = onStderrLine
    }
}

/// One segment, decoded straight from the source and encoded into its packet file:
///
///     SegmentSource (seek, decode, buffer frames) → processors (--vf graph, --process program) → SegmentSink
///
/// Every kept frame is encoded with its source timestamp (or, after a processor that changes the rate, the
/// time it falls at inside its source frame).
package struct SegmentPipeline {
    package var source: String
    package var index: VideoIndex
    package var segment: SegmentPlan
    package var settings: TranscodeSettings
    package var outputPath: String
    /// Called with each kept frame's count increment as it is decoded (from the worker thread); with a `--process`
    /// program, as it comes back from it (`ReturnedFrames`).
    package var progress: @Sendable (Int) -> Void = { _ in }
    /// Its stop switch and I/O deadline; progress is reported to it for the stall watchdog.
    package var watch: WorkWatch = WorkWatch()
    /// The source's HDR10 static metadata, handed to encoders that write it (x265, SVT-AV1).
    package var hdr: HDRMetadata? = nil
    /// The input's identity when the task started: a replaced or modified input is refused (exit 3).
    package var expect: FileIdentity? = nil
    /// The `--process` program's run (with `settings.process`).
    package var processor: ProcessorRun? = nil
    /// When the attempt started (`monotonicSeconds`), its start-up's origin; nil: when `run` is called.
    package var origin: Double? = nil

    package func run() throws(VSliceError) -> SegmentResult {
        let origin = origin ?? monotonicSeconds()
        var firstFrame: Double? = nil
        let returned = processor.map { ReturnedFrames(rate: $0.output.rate, report: progress) }
        var decoded: @Sendable (Int) -> Void = progress
        if let returned { decoded = { returned.keptFrame($0) } }
        let src = try SegmentSource(path: source, index: index, segment: segment, threads: settings.threadsPerJob, watch: watch,
                                    expect: expect, progress: decoded)
        let cut = settings.cutsByTime ? segment.cut : nil
        // Kept loaded without a slot's program (a worker): one for this segment, ended with it.
        let own = settings.process?.isPersistent == true && processor != nil && processor?.host == nil
            ? PersistentProcessor(settings: settings.process!) : nil
        defer { own?.close() }
        let (stages, geometry) = try makeStages(src, cut: cut, host: processor?.host ?? own)
        let external = stages.last as? ExternalProcessor
        let sink = try SegmentSink(.init(settings: settings, geometry: geometry, hdr: hdr, cut: cut,
                                         rate: processor?.output.rate ?? Ratio(num: 1, den: 1)),
                                   segment: segment, index: index, path: source, outputPath: outputPath, watch: watch)
        let chain = StageChain(stages) { (frame) throws(VSliceError) in
            try sink.take(frame)
            returned?.returned()
        }
        try src.run { (frame) throws(VSliceError) in
            if firstFrame == nil { firstFrame = monotonicSeconds() }
            returned?.pushed()
            try chain.push(frame)
        }
        try chain.finish(end: src.end)
        returned?.finish()
        let flushFrom = monotonicSeconds()
        let sealed = try sink.finish()
        let flushed = monotonicSeconds() - flushFrom
        if cut == nil && (src.handedOn != segment.processedCount || sealed.kept != segment.frameCount) {
            try? FileManager.default.removeItem(atPath: outputPath)
            throw VSliceError(.processing, "encode segment \(segment.index)", path: source,
                              reason: "expected \(segment.frameCount) frames (\(segment.processedCount) with buffers), "
                                + "got \(sealed.kept) (\(src.handedOn) processed)")
        }
        var result = SegmentResult(framesProcessed: src.handedOn, framesKept: sealed.kept, bytes: sealed.bytes,
                                   checksum: sealed.checksum, processorCPU: external?.cpuSeconds ?? 0,
                                   startupSeconds: firstFrame.map { $0 - origin }, flushSeconds: flushed)
        result.processorCost = external?.timedCost
        return result
    }

    /// The stages between the decoder and the encoder, and what comes out of the last: the `--vf` graph, the
    /// `--process` program, and a pixel-format conversion when the encoder cannot take what comes out.
    private func makeStages(_ src: SegmentSource, cut: TimeCut?, host: PersistentProcessor?) throws(VSliceError) -> ([any FrameProcessor], FrameGeometry) {
        let supported = SegmentSink.supportedPixelFormats(codec: settings.videoCodec)
        let from = src.geometry
        let needsConversion = !supported.isEmpty && !supported.contains(from.pixelFormat)
        var stages: [any FrameProcessor] = []
        var geometry = from
        if let vf = settings.videoFilter {
            let graph = try VideoFilterGraph(description: vf, decoder: src.decoder.ctx, timeBase: src.timeBase, frameRate: from.frameRate,
                                             outputFormats: processor == nil && needsConversion ? supported : [], path: source)
            let stage = FilterStage(graph: graph, inputTimeBase: src.timeBase, offset: cut?.graphOffset ?? 0,
                                    primeFrames: cut?.primeFrames ?? 0, colors: from)
            stages.append(stage)
            geometry = stage.output
        }
        if let run = processor, let process = settings.process {
            var spec = ProcessorSpec(settings: process, label: "segment \(segment.index)", expected: run.output, environment: run.environment, logPath: run.logPath,
                                     onStderrLine: run.onStderrLine, encoderFormats: supported, preferredFormat: geometry.pixelFormat,
                                     inputFrames: settings.videoFilter == nil ? segment.processedCount : nil)
            if let spans = settings.context?.frames, !spans.isEmpty {
                spec.lead = try ContextFrames.decode(spans, source: source, index: index, threads: settings.threadsPerJob, watch: watch,
                                                     expect: expect)
            }
            if process.isPersistent {
                spec.host = host
                spec.streamTags = ProcessorSpec.tags(segment: segment.index, firstFrame: segment.firstFrame, frames: segment.processedCount,
                                                     before: segment.firstFrame - segment.bufferStart, after: segment.bufferEnd - segment.lastFrame)
            }
            let stage = try ExternalProcessor(spec, input: geometry, watch: watch, path: source)
            src.decodingIsProgress = false
            stages.append(stage)
            geometry = stage.output
        } else if settings.videoFilter == nil && needsConversion {
            let graph = try VideoFilterGraph(description: nil, decoder: src.decoder.ctx, timeBase: src.timeBase, frameRate: from.frameRate,
                                             outputFormats: supported, path: source)
            let stage = FilterStage(graph: graph, inputTimeBase: src.timeBase, colors: from)
            stages.append(stage)
            geometry = stage.output
        }
        // The encoder's nominal rate: what a filter or processor says it puts out, else the stream's average.
        if stages.isEmpty || !settings.cutsByTime || !(geometry.frameRate.num > 0 && geometry.frameRate.den > 0) {
            let avg = src.stream.pointee.avg_frame_rate
            geometry.frameRate = avg.num > 0 && avg.den > 0 ? avg : src.stream.pointee.r_frame_rate
        }
        return (stages, geometry)
    }

    package init(source: String, index: VideoIndex, segment: SegmentPlan, settings: TranscodeSettings,
                 outputPath: String, progress: @escaping @Sendable (Int) -> Void = { _ in },
                 watch: WorkWatch = WorkWatch(), hdr: HDRMetadata? = nil, expect: FileIdentity? = nil,
                 processor: ProcessorRun? = nil, origin: Double? = nil) {
        self.source = source
        self.index = index
        self.segment = segment
        self.settings = settings
        self.outputPath = outputPath
        self.progress = progress
        self.watch = watch
        self.hdr = hdr
        self.expect = expect
        self.processor = processor
        self.origin = origin
    }
}

import CFFmpeg
import VSliceModel
import VSliceSupport

/// What frames look like at one point of a segment's pipeline: their size, pixel format and clock.
package struct FrameGeometry {
    package var width: Int32
    package var height: Int32
    package var pixelFormat: AVPixelFormat
    package var sampleAspect: AVRational
    /// The time base of the frames' `pts`.
    package var timeBase: AVRational
    /// The nominal frame rate, 0/1 when unknown.
    package var frameRate: AVRational
    /// Colour description the frames carry (the source's: processors keep it).
    package var colorRange: AVColorRange = AVCOL_RANGE_UNSPECIFIED
    package var colorSpace: AVColorSpace = AVCOL_SPC_UNSPECIFIED
    package var colorPrimaries: AVColorPrimaries = AVCOL_PRI_UNSPECIFIED
    package var colorTransfer: AVColorTransferCharacteristic = AVCOL_TRC_UNSPECIFIED
    package var chromaLocation: AVChromaLocation = AVCHROMA_LOC_UNSPECIFIED
    package var fieldOrder: AVFieldOrder = AV_FIELD_UNKNOWN

    /// The geometry of a decoder's frames, timed in `timeBase`.
    package init(decoder d: AVCodecContext, timeBase: AVRational, frameRate: AVRational) {
        self.init(width: d.width, height: d.height, pixelFormat: d.pix_fmt, sampleAspect: d.sample_aspect_ratio,
                  timeBase: timeBase, frameRate: frameRate)
        colorRange = d.color_range
        colorSpace = d.colorspace
        colorPrimaries = d.color_primaries
        colorTransfer = d.color_trc
        chromaLocation = d.chroma_sample_location
        fieldOrder = d.field_order
    }

    /// The same frames' colour description and field order (what every stage keeps from the source).
    package mutating func takeColors(of c: FrameGeometry) {
        colorRange = c.colorRange
        colorSpace = c.colorSpace
        colorPrimaries = c.colorPrimaries
        colorTransfer = c.colorTransfer
        chromaLocation = c.chromaLocation
        fieldOrder = c.fieldOrder
    }

    package init(width: Int32, height: Int32, pixelFormat: AVPixelFormat, sampleAspect: AVRational, timeBase: AVRational,
         frameRate: AVRational) {
        self.width = width
        self.height = height
        self.pixelFormat = pixelFormat
        self.sampleAspect = sampleAspect
        self.timeBase = timeBase
        self.frameRate = frameRate
    }

    /// Full range (JPEG) rather than limited (MPEG); the deprecated yuvj formats are full range too.
    package var fullRange: Bool {
        colorRange == AVCOL_RANGE_JPEG || PixelConverter.plainTwin(pixelFormat) != pixelFormat
    }

    package var pixelFormatName: String { av_get_pix_fmt_name(pixelFormat).map { String(cString: $0) } ?? "none" }
}

/// One stage between a segment's decoder and its encoder: a libavfilter graph (`--vf`), an external program
/// (`--process`), or a pixel-format conversion. Frames go in with `send`, come out with `receive`, in the
/// send/receive manner of FFmpeg's codecs: a stage that cannot take a frame now says so, and the caller
/// receives what it has ready first, so that no stage holds more than a few frames.
package protocol FrameProcessor: AnyObject {
    /// What comes out (its pixel format, size and clock).
    var output: FrameGeometry { get }
    /// Takes `frame` (timed in the stage's input time base; the stage does not keep the caller's frame).
    /// False: not taken now — receive the frames ready first, then send it again.
    func send(_ frame: Frame) throws(VSliceError) -> Bool
    /// No more input: the last frame sent is shown until `end` (input time base).
    func finish(end: Int64) throws(VSliceError)
    /// The next frame out: `.again` when none is ready yet (send more), `.endOfStream` once finished and drained.
    func receive(_ frame: Frame) throws(VSliceError) -> CodecResult
}

/// Stages in a row, each one's output the next one's input, the last one's given to `sink`: frames pushed in
/// travel as far as they can at once (a stage that refuses input gets what it has ready taken first).
package struct StageChain {
    package let stages: [any FrameProcessor]
    package let sink: (Frame) throws(VSliceError) -> Void
    private let outs: [Frame]

    package init(_ stages: [any FrameProcessor], sink: @escaping (Frame) throws(VSliceError) -> Void) {
        self.stages = stages
        self.sink = sink
        outs = stages.map { _ in Frame() }
    }

    /// Sends a frame into stage `k` (the sink past the last).
    package func push(_ frame: Frame, into k: Int = 0) throws(VSliceError) {
        guard k < stages.count else { return try sink(frame) }
        while try !stages[k].send(frame) { try drain(k) }
        try drain(k)
    }

    private func drain(_ k: Int) throws(VSliceError) {
        while try stages[k].receive(outs[k]) == .ok { try push(outs[k], into: k + 1) }
    }

    /// Ends every stage's input in turn (the last frame shown until `end`) and drains it.
    package func finish(end: Int64) throws(VSliceError) {
        for k in stages.indices {
            try stages[k].finish(end: end)
            try drain(k)
        }
    }
}

/// A libavfilter graph as a pipeline stage: source timestamps in (the stream's time base, absolute), the graph's
/// frames out, timed in that same clock. The graph runs on a clock that starts where the file does (`offset`
/// ticks are taken off on the way in and added back on the way out), and a graph that counts frames gets
/// `primeFrames` blank frames before the first real one, so that its count at each frame is the source's.
package final class FilterStage: FrameProcessor {
    package let graph: VideoFilterGraph
    package let output: FrameGeometry
    private let inputTimeBase: AVRational
    private let offset: Int64
    private var primeFrames: Int
    private var finished = false
    private var sentAny = false

    package init(graph: VideoFilterGraph, inputTimeBase: AVRational, offset: Int64 = 0, primeFrames: Int = 0,
         colors: FrameGeometry? = nil) {
        self.graph = graph
        self.inputTimeBase = inputTimeBase
        self.offset = offset
        self.primeFrames = primeFrames
        var out = FrameGeometry(width: graph.width, height: graph.height, pixelFormat: graph.pixelFormat,
                                sampleAspect: graph.sampleAspect, timeBase: inputTimeBase, frameRate: graph.frameRate)
        if let c = colors { out.takeColors(of: c) }
        output = out
    }

    package func send(_ frame: Frame) throws(VSliceError) -> Bool {
        if primeFrames > 0 { try prime(like: frame) }
        sentAny = true
        let ts = frame.pts
        frame.pts = ts - offset
        defer { frame.pts = ts }
        try graph.push(frame)
        return true
    }

    /// One blank frame per source frame before the first, timed just before it.
    private func prime(like frame: Frame) throws(VSliceError) {
        let blank = Frame()
        blank.ptr.pointee.width = frame.ptr.pointee.width
        blank.ptr.pointee.height = frame.ptr.pointee.height
        blank.ptr.pointee.format = frame.ptr.pointee.format
        blank.ptr.pointee.sample_aspect_ratio = frame.ptr.pointee.sample_aspect_ratio
        try ffCheck(av_frame_get_buffer(blank.ptr, 0), "allocate frame", path: graph.path)
        let count = primeFrames
        primeFrames = 0
        for k in 0..<count {
            blank.pts = frame.pts - offset - Int64(count - k)
            try graph.push(blank)
        }
    }

    package func finish(end: Int64) throws(VSliceError) {
        finished = true
        if sentAny { try graph.close(at: end - offset) } else { try graph.push(nil) }
    }

    package func receive(_ frame: Frame) throws(VSliceError) -> CodecResult {
        let r = try graph.pull(frame)
        guard r == .ok else { return r == .again && finished ? .endOfStream : r }
        let tb = graph.timeBase
        if tb.num != inputTimeBase.num || tb.den != inputTimeBase.den { frame.pts = av_rescale_q(frame.pts, tb, inputTimeBase) }
        frame.pts += offset
        return .ok
    }
}

import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// The sink end of a segment: drops the buffer frames, times and encodes the kept ones with a fresh encoder, and
/// writes the kept packets to the segment's packet file.
///
/// Two ways to cut. By source frames (no filter, no processor): every frame is encoded with its source
/// timestamp; an IDR at the first kept frame and at the first trailing buffer frame (or x265's own chunking)
/// makes the cut clean, and the packets outside the kept frames are dropped. By time (`TimeCut`: a filter graph
/// or a processor decided what comes out): only the frames timed inside the segment's interval reach the
/// encoder, each packet lasting until the next frame that came out.
package final class SegmentSink {
    private let segment: SegmentPlan
    private let index: VideoIndex
    private let path: String
    private let outputPath: String
    private let encoder: Encoder
    private let writer: PacketFileWriter
    private let watch: WorkWatch
    private let cut: TimeCut?
    /// The sink's clock is the source's time base ÷ `clock` (a processor giving P frames per Q inputs: P).
    private let clock: Int64
    /// A time-cut segment's last frame lasts the cut's last frame duration × this (Q of the processor's rate).
    private let lastDurationScale: Int64
    /// x265 cuts the buffered segment itself (`TranscodeSettings.x265Chunk`): no forced keyframes then.
    private let chunked: Bool

    package private(set) var kept = 0
    /// Frames sent to the encoder (frame mode: every frame handed on).
    package private(set) var encodedFrames = 0
    private var sentTrailingKey = false
    /// Time-cut mode: every frame time that came out (kept or not, ascending), and packets waiting for the next
    /// frame's time, which is where they end.
    private var outputTimes: [Int64] = []
    private var waiting: [Packet] = []
    private let encoded = Packet()

    package struct Setup {
        package var settings: TranscodeSettings
        package var geometry: FrameGeometry
        package var hdr: HDRMetadata?
        package var cut: TimeCut?
        /// The processor's rate P/Q (1/1 without one).
        package var rate = Ratio(num: 1, den: 1)
    }

    package init(_ s: Setup, segment: SegmentPlan, index: VideoIndex, path: String, outputPath: String,
                 watch: WorkWatch) throws(VSliceError) {
        self.segment = segment
        self.index = index
        self.path = path
        self.outputPath = outputPath
        self.watch = watch
        cut = s.cut
        clock = Int64(s.rate.num)
        lastDurationScale = Int64(s.rate.den)
        encoder = try Encoder(name: s.settings.videoCodec, path: outputPath)
        let (options, chunked) = s.cut == nil
            ? s.settings.segmentEncoderOptions(before: segment.firstFrame - segment.bufferStart, kept: segment.frameCount,
                                               after: segment.bufferEnd - segment.lastFrame)
            : (s.settings.videoEncoderOptions, false)
        self.chunked = chunked
        try Self.configure(encoder, s, options: options)
        writer = try PacketFileWriter(path: outputPath, params: StreamParams(encoder: encoder.ctx))
    }

    /// Pixel formats `codec`'s encoder takes (empty: any).
    package static func supportedPixelFormats(codec: String) -> [AVPixelFormat] {
        guard let c = avcodec_find_encoder_by_name(codec), var p = c.pointee.pix_fmts else { return [] }
        var out: [AVPixelFormat] = []
        while p.pointee != AV_PIX_FMT_NONE { out.append(p.pointee); p += 1 }
        return out
    }

    /// Takes a frame out of the last stage (timed in the sink's clock).
    package func take(_ frame: Frame) throws(VSliceError) {
        let ts = frame.pts
        if let cut {
            if let last = outputTimes.last, ts <= last {
                throw VSliceError(.processing, "filter segment \(segment.index)", path: path,
                                  reason: "the frames came out with timestamps out of order (\(ts) after \(last))")
            }
            outputTimes.append(ts)
            if let f = cut.keepFromPts, ts < f * clock { return }
            if let u = cut.keepUntilPts, ts >= u * clock { return }
            frame.ptr.pointee.pict_type = AV_PICTURE_TYPE_NONE
        } else {
            // A clean cut: an IDR at the first kept frame and at the first trailing buffer frame, so that no kept
            // packet references a dropped one.
            let forceKey = !chunked && (ts == segment.startPts || (ts > segment.endPts && !sentTrailingKey))
            if ts > segment.endPts { sentTrailingKey = true }
            frame.ptr.pointee.pict_type = forceKey ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE
        }
        encodedFrames += 1
        try encode(frame)
    }

    /// Flushes the encoder and seals the file: the frames it kept and the file's size and checksum.
    package func finish() throws(VSliceError) -> (kept: Int, bytes: Int64, checksum: UInt32) {
        try encode(nil)
        if cut != nil { try release(final: true) }
        if let cut, let expected = cut.expectedFrames, kept != expected {
            try? FileManager.default.removeItem(atPath: outputPath)
            var e = VSliceError(.processing, "encode segment \(segment.index)", path: path,
                                reason: "\(kept) frames came out in the segment's interval, where \(expected) were expected")
            e.deterministic = true
            throw e
        }
        try writer.finish()
        return (kept, writer.bytesWritten, writer.sealedChecksum)
    }

    private func encode(_ frame: Frame?) throws(VSliceError) {
        var sent = false
        while !sent {
            switch try encoder.send(frame) {
            case .ok, .endOfStream: sent = true
            case .again: break
            }
            while try encoder.receive(encoded) == .ok {
                // Checked per packet: while the encoder is flushed (its lookahead can hold most of a short
                // segment's work) an abort must not wait for the flush; the encoder is dropped instead.
                try watch.check("encode segment \(segment.index)", path: path)
                try place(encoded)
            }
        }
    }

    /// Keeps or drops a packet the encoder put out.
    private func place(_ packet: Packet) throws(VSliceError) {
        if cut != nil {
            // Its duration: until the next frame that came out (known once that has come out).
            let copy = Packet()
            try ffCheck(av_packet_ref(copy.ptr, packet.ptr), "copy packet", path: outputPath)
            waiting.append(copy)
            try release(final: false)
        } else if chunked && (packet.pts < segment.startPts || packet.pts > segment.endPts) {
            // x265 puts out the chunk's frames only; a buffer frame means it did not chunk.
            var e = VSliceError(.processing, "encode segment \(segment.index)", path: path,
                                reason: "x265 encoded an overlap buffer frame: its chunking is off (a parameter given with x265-params may open the GOP)")
            e.deterministic = true
            throw e
        } else if packet.pts >= segment.startPts && packet.pts <= segment.endPts {
            // Encoders with delay leave durations unset; the muxer needs at least the last one: the interval to
            // the next source frame, for the source's last frame its stated duration or the median interval
            // (see Probe.indexStreams, where it is read, and why).
            packet.duration = index.duration(ofFrameAt: packet.pts)
            try keep(packet)
        }
    }

    /// Writes the waiting packets whose next frame time is known (all of them at the end).
    private func release(final: Bool) throws(VSliceError) {
        while let p = waiting.first {
            var lo = 0, hi = outputTimes.count
            while lo < hi { let mid = (lo + hi) / 2; if outputTimes[mid] <= p.pts { lo = mid + 1 } else { hi = mid } }
            if lo == outputTimes.count && !final { return }
            p.duration = lo < outputTimes.count ? outputTimes[lo] - p.pts : cut!.lastFrameDuration * lastDurationScale
            try keep(p)
            waiting.removeFirst()
        }
    }

    private func keep(_ packet: Packet) throws(VSliceError) {
        // A segment that does not start with a keyframe would not decode after the one before it.
        if kept == 0 && !packet.isKey {
            var e = VSliceError(.processing, "encode segment \(segment.index)", path: path,
                                reason: "the encoder did not start the segment with a keyframe"
                                    + (chunked ? " (x265 chunking is off: a parameter given with x265-params may open the GOP)" : ""))
            e.deterministic = true
            throw e
        }
        try writer.write(packet)
        kept += 1
        if kept == 5 {
            Fault.hit("segment-encode")
            Fault.stall("segment-stall", watch)
            try Fault.reject("segment-reject", "encode segment \(segment.index)", path: path)
        }
    }

    private static func configure(_ encoder: Encoder, _ s: Setup, options: [(String, String)]) throws(VSliceError) {
        let c = encoder.ctx, g = s.geometry
        c.pointee.width = g.width
        c.pointee.height = g.height
        c.pointee.pix_fmt = g.pixelFormat
        c.pointee.sample_aspect_ratio = g.sampleAspect
        c.pointee.time_base = g.timeBase
        c.pointee.framerate = g.frameRate
        c.pointee.color_range = g.colorRange
        c.pointee.color_primaries = g.colorPrimaries
        c.pointee.color_trc = g.colorTransfer
        c.pointee.colorspace = g.colorSpace
        c.pointee.chroma_sample_location = g.chromaLocation
        c.pointee.field_order = g.fieldOrder
        c.pointee.thread_count = Int32(s.settings.threadsPerJob)
        c.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
        if let b = s.settings.videoBitrate { c.pointee.bit_rate = b }
        // The source's HDR10 metadata goes to the encoders that write it, added to their own parameters.
        var options = options
        if let list = s.settings.videoEncoder.parameterList, let hdr = s.hdr {
            options = TranscodeSettings.appending(hdr.parameters(for: list), to: list, in: options)
        }
        try encoder.open(options: options)
    }
}

import CFFmpeg
import Foundation

/// What one segment encode did (recorded in its trace).
public struct SegmentResult: Codable, Sendable {
    public var framesProcessed: Int
    public var framesKept: Int
    public var bytes: Int64
    /// The segment file's trailer checksum (recorded so resume can tell a damaged file).
    public var checksum: UInt32
}

/// Decodes one segment straight from the source (no split copies), runs it through the optional filter
/// graph and a fresh encoder, drops the overlap-buffer frames, and writes the kept packets to a packet file.
/// Every kept frame is encoded with its source timestamp (encoder time base = source stream time base).
struct SegmentEncoder {
    var source: String
    var index: VideoIndex
    var segment: SegmentPlan
    var settings: TranscodeSettings
    var outputPath: String
    /// Called with each kept frame's count increment as it is processed (from the worker thread).
    var progress: @Sendable (Int) -> Void = { _ in }
    /// Its stop switch and I/O deadline; progress is reported to it for the stall watchdog.
    var watch = WorkWatch()
    /// The source's HDR10 static metadata, handed to encoders that write it (x265, SVT-AV1).
    var hdr: HDRMetadata? = nil
    /// The input's identity when the task started: a replaced or modified input is refused (exit 3).
    var expect: FileIdentity? = nil

    func run() throws(VSliceError) -> SegmentResult {
        let videoStream = index.streamIndex
        let input = try InputFile(path: source, watch: watch, expect: expect)
        input.keepOnly(videoStream)
        let st = input.stream(videoStream)
        let streamTB = st.pointee.time_base
        let decoder = try Decoder(stream: st, path: source, threads: settings.threadsPerJob)
        // The keyframe packet decoding starts with (already read by the seek).
        let first: Packet? = segment.decodeFrom > 0
            ? try Self.seekToKeyframe(input, stream: videoStream, atOrBefore: segment.decodeFromPts,
                                      step: max(1, Int64(2.0 / index.timeBase.value)))
            : nil

        let encoder = try Encoder(name: settings.videoCodec, path: outputPath)
        let supported = Self.supportedPixelFormats(encoder)
        let srcFormat = decoder.ctx.pointee.pix_fmt
        let needsConversion = !supported.isEmpty && !supported.contains(srcFormat)
        var graph: VideoFilterGraph? = nil
        if settings.videoFilter != nil || needsConversion {
            graph = try VideoFilterGraph(description: settings.videoFilter, decoder: decoder.ctx, timeBase: streamTB,
                                         frameRate: av_guess_frame_rate(input.ctx, st, nil),
                                         outputFormats: needsConversion ? supported : [], path: source)
        }
        // x265 cuts a buffered segment itself (see `TranscodeSettings.x265Chunk`): no forced keyframes then.
        let (options, chunked) = cutMode(graph) == nil
            ? settings.segmentEncoderOptions(before: segment.firstFrame - segment.bufferStart, kept: segment.frameCount,
                                             after: segment.bufferEnd - segment.lastFrame)
            : (settings.videoEncoderOptions, false)
        try configure(encoder, decoder: decoder, graph: graph, stream: st, options: options)
        let writer = try PacketFileWriter(path: outputPath, params: StreamParams(encoder: encoder.ctx))

        var state = State()
        let readPacket = Packet(), decoded = Frame(), filtered = Frame(), encoded = Packet()
        let graphTB = graph?.timeBase ?? streamTB
        // A filtered segment is cut by time: only the graph's output frames in its interval are encoded.
        let cut = cutMode(graph)
        let offset = cut?.graphOffset ?? 0
        /// Time-cut mode: every output frame time of the graph (kept or not, ascending), and packets waiting
        /// for the next frame's time, which is their duration's end.
        var outputTimes: [Int64] = []
        var waiting: [Packet] = []

        func keep(_ packet: Packet) throws(VSliceError) {
            // A segment that does not start with a keyframe would not decode after the one before it.
            if state.kept == 0 && !packet.isKey {
                var e = VSliceError(.processing, "encode segment \(segment.index)", path: source,
                                    reason: "the encoder did not start the segment with a keyframe"
                                        + (chunked ? " (x265 chunking is off: a parameter given with x265-params may open the GOP)" : ""))
                e.deterministic = true
                throw e
            }
            try writer.write(packet)
            state.kept += 1
            if state.kept == 5 {
                Fault.hit("segment-encode")
                Fault.stall("segment-stall", watch)
                try Fault.reject("segment-reject", "encode segment \(segment.index)", path: source)
            }
        }
        /// Writes the waiting packets whose next frame time is known (all of them at the end).
        func release(final: Bool) throws(VSliceError) {
            while let p = waiting.first {
                var lo = 0, hi = outputTimes.count
                while lo < hi { let mid = (lo + hi) / 2; if outputTimes[mid] <= p.pts { lo = mid + 1 } else { hi = mid } }
                if lo == outputTimes.count && !final { return }
                p.duration = lo < outputTimes.count ? outputTimes[lo] - p.pts : cut!.lastFrameDuration
                try keep(p)
                waiting.removeFirst()
            }
        }

        func encode(_ frame: Frame?) throws(VSliceError) {
            if let frame {
                if graphTB.num != streamTB.num || graphTB.den != streamTB.den {
                    frame.pts = av_rescale_q(frame.pts, graphTB, streamTB)
                }
                frame.pts += offset
                let ts = frame.pts
                if let cut {
                    if let last = outputTimes.last, ts <= last {
                        throw VSliceError(.processing, "filter segment \(segment.index)", path: source,
                                          reason: "the filter graph put out timestamps out of order (\(ts) after \(last))")
                    }
                    outputTimes.append(ts)
                    if let f = cut.keepFromPts, ts < f { return }
                    if let u = cut.keepUntilPts, ts >= u { return }
                    frame.ptr.pointee.pict_type = AV_PICTURE_TYPE_NONE
                } else {
                    // A clean cut: an IDR at the first kept frame and at the first trailing buffer frame, so that
                    // no kept packet references a dropped one.
                    let forceKey = !chunked && (ts == segment.startPts || (ts > segment.endPts && !state.sentTrailingKey))
                    if ts > segment.endPts { state.sentTrailingKey = true }
                    frame.ptr.pointee.pict_type = forceKey ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE
                    state.processed += 1
                }
            }
            var sent = false
            while !sent {
                switch try encoder.send(frame) {
                case .ok, .endOfStream: sent = true
                case .again: break
                }
                while try encoder.receive(encoded) == .ok {
                    // Checked per packet: while the encoder is flushed (its lookahead can hold most of a short
                    // segment's work) an abort must not wait for the flush; the encoder is dropped instead.
                    try watch.check("encode segment \(segment.index)", path: source)
                    if cut != nil {
                        // Its duration: until the graph's next output frame (known once that has come out).
                        let copy = Packet()
                        try ffCheck(av_packet_ref(copy.ptr, encoded.ptr), "copy packet", path: outputPath)
                        waiting.append(copy)
                        try release(final: false)
                    } else if chunked && (encoded.pts < segment.startPts || encoded.pts > segment.endPts) {
                        // x265 puts out the chunk's frames only; a buffer frame means it did not chunk.
                        var e = VSliceError(.processing, "encode segment \(segment.index)", path: source,
                                            reason: "x265 encoded an overlap buffer frame: its chunking is off (a parameter given with x265-params may open the GOP)")
                        e.deterministic = true
                        throw e
                    } else if encoded.pts >= segment.startPts && encoded.pts <= segment.endPts {
                        // Encoders with delay leave durations unset; the muxer needs at least the last one: the
                        // interval to the next source frame, for the source's last frame its stated duration or
                        // the median interval (see Probe.indexStreams, where it is read, and why).
                        encoded.duration = index.duration(ofFrameAt: encoded.pts)
                        try keep(encoded)
                    }
                }
            }
        }

        var primed = false
        /// A graph that counts frames first gets one blank frame per source frame before the segment's first,
        /// timed just before it, so its count at each real frame is the source's frame number.
        func prime(like frame: Frame) throws(VSliceError) {
            primed = true
            guard let cut, cut.primeFrames > 0, let graph else { return }
            let blank = Frame()
            blank.ptr.pointee.width = frame.ptr.pointee.width
            blank.ptr.pointee.height = frame.ptr.pointee.height
            blank.ptr.pointee.format = frame.ptr.pointee.format
            blank.ptr.pointee.sample_aspect_ratio = frame.ptr.pointee.sample_aspect_ratio
            try ffCheck(av_frame_get_buffer(blank.ptr, 0), "allocate frame", path: source)
            for k in 0..<cut.primeFrames {
                blank.pts = frame.pts - offset - Int64(cut.primeFrames - k)
                try graph.push(blank)
                while try graph.pull(filtered) == .ok { try encode(filtered) }
            }
        }

        func process(_ frame: Frame) throws(VSliceError) {
            state.decoded += 1
            watch.madeProgress()
            let ts = frame.bestEffortTimestamp
            if ts == AV_NOPTS || ts < segment.bufferStartPts { return }
            if ts > segment.bufferEndPts { state.done = true; return }
            if ts == segment.bufferEndPts { state.done = true }
            // Damaged source data is an error, not a silently concealed frame in the output.
            if frame.isCorrupt {
                throw VSliceError(.input, "decode video", path: source,
                                  reason: String(format: "corrupt data in the video stream near %.3f s", Double(ts) * index.timeBase.value))
            }
            frame.pts = ts
            if ts >= segment.startPts && ts <= segment.endPts { progress(1) }
            if let graph {
                if !primed { try prime(like: frame) }
                if cut != nil { state.processed += 1 }
                frame.pts = ts - offset
                try graph.push(frame)
                frame.pts = ts
                state.lastPushed = ts
                while try graph.pull(filtered) == .ok { try encode(filtered) }
            } else {
                try encode(frame)
            }
        }

        func drainDecoder() throws(VSliceError) {
            while try decoder.receive(decoded) == .ok {
                try process(decoded)
                try watch.check("encode segment \(segment.index)", path: source)
            }
        }

        var pendingFirst = first
        while !state.done {
            let packet: Packet
            if let p = pendingFirst {
                packet = p
                pendingFirst = nil
            } else {
                packet = readPacket
                guard try input.read(into: packet) else { break }
                guard packet.streamIndex == videoStream else { continue }
            }
            var accepted = false
            while !accepted {
                accepted = try decoder.send(packet) != .again
                try drainDecoder()
                if state.done { break }
            }
        }
        if !state.done {
            _ = try decoder.send(nil)
            try drainDecoder()
        }
        if let graph {
            // The last frame pushed lasts until the next source frame (the source's end after its last).
            if let last = state.lastPushed { try graph.close(at: last + index.duration(ofFrameAt: last) - offset) } else { try graph.push(nil) }
            while try graph.pull(filtered) == .ok { try encode(filtered) }
        }
        try encode(nil)
        if cut != nil { try release(final: true) }

        if let cut {
            if let expected = cut.expectedFrames, state.kept != expected {
                try? FileManager.default.removeItem(atPath: outputPath)
                var e = VSliceError(.processing, "encode segment \(segment.index)", path: source,
                                    reason: "the filter gave \(state.kept) frames in the segment's interval, its measured timing \(expected)")
                e.deterministic = true
                throw e
            }
        } else if state.processed != segment.processedCount || state.kept != segment.frameCount {
            try? FileManager.default.removeItem(atPath: outputPath)
            throw VSliceError(.processing, "encode segment \(segment.index)", path: source,
                              reason: "expected \(segment.frameCount) frames (\(segment.processedCount) with buffers), "
                                + "got \(state.kept) (\(state.processed) processed)")
        }
        try writer.finish()
        return SegmentResult(framesProcessed: state.processed,
                             framesKept: state.kept, bytes: writer.bytesWritten, checksum: writer.sealedChecksum)
    }

    /// A filtered segment is cut by time (its graph's output frames in an interval); nil: cut by source frames.
    private func cutMode(_ graph: VideoFilterGraph?) -> TimeCut? {
        graph != nil && settings.videoFilter != nil ? segment.cut : nil
    }

    private struct State {
        var decoded = 0, processed = 0, kept = 0
        var done = false
        var sentTrailingKey = false
        var lastPushed: Int64? = nil
    }

    /// Seeks so that the next packet decoded is a keyframe at or before `target`, and returns that packet.
    /// Demuxers without an index (MPEG-TS) may land after the keyframe asked for; then it seeks earlier,
    /// by `step` ticks and doubling, and finally from the start of the file.
    static func seekToKeyframe(_ input: InputFile, stream: Int, atOrBefore target: Int64,
                               step: Int64) throws(VSliceError) -> Packet {
        let packet = Packet()
        var back: Int64 = 0
        var fromStart = false
        while true {
            if fromStart {
                try ffCheck(avformat_seek_file(input.ctx, -1, 0, 0, 0, AVSEEK_FLAG_BYTE), "seek to start", path: input.path, kind: .input)
            } else {
                try input.seek(streamIndex: stream, timestamp: target - back)
            }
            var found: Int64? = nil
            while try input.read(into: packet) {
                guard packet.streamIndex == stream, packet.isKey else { continue }
                found = packet.pts != AV_NOPTS ? packet.pts : packet.dts
                break
            }
            if let found, found <= target { return packet }
            if fromStart {
                throw VSliceError(.input, "seek", path: input.path, reason: "no keyframe at or before timestamp \(target)")
            }
            back = back == 0 ? step : back * 2
            if back > step * 64 { fromStart = true }
        }
    }

    static func supportedPixelFormats(_ encoder: Encoder) -> [AVPixelFormat] {
        var out: [AVPixelFormat] = []
        guard var p = encoder.ctx.pointee.codec.pointee.pix_fmts else { return out }
        while p.pointee != AV_PIX_FMT_NONE { out.append(p.pointee); p += 1 }
        return out
    }

    private func configure(_ encoder: Encoder, decoder: Decoder, graph: VideoFilterGraph?,
                           stream: UnsafeMutablePointer<AVStream>, options: [(String, String)]) throws(VSliceError) {
        let c = encoder.ctx
        let d = decoder.ctx.pointee
        c.pointee.width = graph?.width ?? d.width
        c.pointee.height = graph?.height ?? d.height
        c.pointee.pix_fmt = graph?.pixelFormat ?? d.pix_fmt
        c.pointee.sample_aspect_ratio = graph?.sampleAspect ?? d.sample_aspect_ratio
        c.pointee.time_base = stream.pointee.time_base
        let avg = stream.pointee.avg_frame_rate
        c.pointee.framerate = avg.num > 0 && avg.den > 0 ? avg : stream.pointee.r_frame_rate
        if let rate = graph?.frameRate, rate.num > 0, rate.den > 0, settings.videoFilter != nil { c.pointee.framerate = rate }
        c.pointee.color_range = d.color_range
        c.pointee.color_primaries = d.color_primaries
        c.pointee.color_trc = d.color_trc
        c.pointee.colorspace = d.colorspace
        c.pointee.chroma_sample_location = d.chroma_sample_location
        c.pointee.field_order = d.field_order
        c.pointee.thread_count = Int32(settings.threadsPerJob)
        c.pointee.flags |= AV_CODEC_FLAG_GLOBAL_HEADER
        if let b = settings.videoBitrate { c.pointee.bit_rate = b }
        // The source's HDR10 metadata goes to the encoders that write it, added to their own parameters.
        var options = options
        if settings.videoCodec == "libx265" { options = TranscodeSettings.appending(hdr?.x265Params ?? [], to: "x265-params", in: options) }
        if settings.videoCodec == "libsvtav1" { options = TranscodeSettings.appending(hdr?.svtParams ?? [], to: "svtav1-params", in: options) }
        try encoder.open(options: options)
    }
}

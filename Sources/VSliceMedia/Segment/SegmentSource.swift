import CFFmpeg
import VSliceModel
import VSliceSupport

/// The source end of a segment: decodes straight from the input file (no split copies), from the keyframe at
/// or before its first buffer frame, and hands on every frame from its first to its last buffer frame, timed
/// with its source timestamp (the stream's time base).
package final class SegmentSource {
    package let path: String
    package let index: VideoIndex
    package let segment: SegmentPlan
    package let input: InputFile
    package let decoder: Decoder
    package let stream: UnsafeMutablePointer<AVStream>
    private let watch: WorkWatch
    /// Called with 1 for each kept frame handed on (the progress bar).
    private let progress: @Sendable (Int) -> Void
    /// A decoded frame counts as progress for the stall watchdog (not when a processor's output does).
    package var decodingIsProgress = true

    /// Frames handed on, and the timestamp of the last.
    package private(set) var handedOn = 0
    package private(set) var lastPts: Int64? = nil
    private var done = false

    package init(path: String, index: VideoIndex, segment: SegmentPlan, threads: Int, watch: WorkWatch, expect: FileIdentity?,
         progress: @escaping @Sendable (Int) -> Void) throws(VSliceError) {
        self.path = path
        self.index = index
        self.segment = segment
        self.watch = watch
        self.progress = progress
        input = try InputFile(path: path, watch: watch, expect: expect)
        input.keepOnly(index.streamIndex)
        stream = input.stream(index.streamIndex)
        decoder = try Decoder(stream: stream, path: path, threads: threads)
    }

    package var timeBase: AVRational { stream.pointee.time_base }

    /// What the decoder's frames look like (their clock: the stream's time base).
    package var geometry: FrameGeometry {
        FrameGeometry(decoder: decoder.ctx.pointee, timeBase: timeBase, frameRate: av_guess_frame_rate(input.ctx, stream, nil))
    }

    /// Where the last frame handed on stops being shown: the next source frame's time (the source's end after
    /// its last frame).
    package var end: Int64 {
        guard let last = lastPts else { return segment.bufferStartPts }
        return last + index.duration(ofFrameAt: last)
    }

    /// Decodes the segment's range, calling `body` with each frame in presentation order.
    package func run(_ body: (Frame) throws(VSliceError) -> Void) throws(VSliceError) {
        var pending: Packet? = segment.decodeFrom > 0
            ? try Self.seekToKeyframe(input, stream: index.streamIndex, atOrBefore: segment.decodeFromPts,
                                      step: max(1, Int64(2.0 / index.timeBase.value)))
            : nil
        let packet = Packet(), frame = Frame()
        func drain() throws(VSliceError) {
            while try decoder.receive(frame) == .ok {
                try handOn(frame, body)
                try watch.check("encode segment \(segment.index)", path: path)
            }
        }
        while !done {
            let next: Packet
            if let p = pending {
                next = p
                pending = nil
            } else {
                next = packet
                guard try input.read(into: next) else { break }
                guard next.streamIndex == index.streamIndex else { continue }
            }
            var accepted = false
            while !accepted && !done {
                accepted = try decoder.send(next) != .again
                try drain()
            }
        }
        if !done {
            _ = try decoder.send(nil)
            try drain()
        }
    }

    private func handOn(_ frame: Frame, _ body: (Frame) throws(VSliceError) -> Void) throws(VSliceError) {
        if decodingIsProgress { watch.madeProgress() }
        let ts = frame.bestEffortTimestamp
        if done || ts == AV_NOPTS || ts < segment.bufferStartPts { return }
        if ts > segment.bufferEndPts { done = true; return }
        if ts == segment.bufferEndPts { done = true }
        // Damaged source data is an error, not a silently concealed frame in the output.
        if frame.isCorrupt {
            throw VSliceError(.input, "decode", path: path, reason: "corrupt data in \(decoder.place(ts))")
        }
        frame.pts = ts
        if ts >= segment.startPts && ts <= segment.endPts { progress(1) }
        handedOn += 1
        lastPts = ts
        try body(frame)
    }

    /// Seeks so that the next packet decoded is a keyframe at or before `target`, and returns that packet.
    /// Demuxers without an index (MPEG-TS) may land after the keyframe asked for; then it seeks earlier,
    /// by `step` ticks and doubling, and finally from the start of the file.
    package static func seekToKeyframe(_ input: InputFile, stream: Int, atOrBefore target: Int64,
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
}

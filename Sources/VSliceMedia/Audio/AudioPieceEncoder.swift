import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// A source audio track as the single pass lays it: where each decoded frame's samples go on the timeline and
/// how long it is. Made by one decode of the track (no encode), it says where each piece starts decoding and
/// at which frame, and with which timeline position, it starts laying samples.
package struct AudioTrackMap {
    /// A decoded frame with a timestamp: that timestamp (the stream's time base), and the timeline position
    /// before it (before the silence of a hole in front of it, if any).
    package struct Mark {
        package var time: Int64
        package var laidBefore: Int64
    }

    package var marks: [Mark] = []
    /// The timeline after the last frame: its start, and the track's length (`laid`).
    package var timeline: AudioTimeline
    package var shape: AudioEncoderShape
    /// Why the track is encoded in one pass (nil: it can be cut).
    package var whyOnePass: String?

    package var totalSamples: Int64 { timeline.laid }

    /// Decodes the track once (nothing is converted or encoded) and records where the single pass lays each frame.
    package static func scan(source: String, stream: Int, codec: String, bitrate: Int64, expect: FileIdentity?) throws(VSliceError) -> AudioTrackMap {
        let decoding = try AudioDecoding(source: source, stream: stream, expect: expect)
        let shape = try AudioEncoderShape(codec: codec, decoder: decoding.decoder, bitrate: bitrate)
        var map = AudioTrackMap(timeline: AudioTimeline(holeThreshold: max(shape.frameSize, 1)), shape: shape, whyOnePass: shape.whyOnePass)
        if map.whyOnePass != nil { return map }
        let outTB = AVRational(num: 1, den: shape.rate)
        try decoding.frames { (frame) throws(VSliceError) in
            let before = map.timeline.laid
            map.timeline.laid += map.timeline.silence(before: decoding.time(of: frame, in: outTB)) + Int64(frame.sampleCount)
            let ts = frame.bestEffortTimestamp
            guard ts != AV_NOPTS else { return true }
            if let last = map.marks.last, ts <= last.time {
                map.whyOnePass = "its timestamps do not increase"
                return false
            }
            map.marks.append(Mark(time: ts, laidBefore: before))
            return true
        }
        if map.whyOnePass == nil && map.marks.isEmpty { map.whyOnePass = "no decoded frame has a timestamp" }
        return map
    }

    /// The pieces of this track for `layout`, numbered in the task from `firstOrder`.
    package func pieces(_ layout: AudioPieceLayout, stream: Int, track: Int, codec: String, bitrate: Int64, firstOrder: Int,
                preroll: Int64, silence: Int64 = 0) -> [AudioPiece] {
        let f = shape.frameSize, total = totalSamples, n = layout.count
        return (0..<n).map { k in
            let keepFrom = layout.starts[k]
            let keepTo = k + 1 < n ? layout.starts[k + 1] : nil
            let feedFrom = k == 0 ? 0 : max(0, keepFrom - preroll * f)
            let feedTo = keepTo.map { $0 + AudioJoin.postroll * f }.flatMap { $0 < total ? $0 : nil }
            let packets = keepTo.map { Int(($0 - keepFrom) / f) } ?? Int((total - keepFrom + f - 1) / f) + shape.extraPackets
            var piece = AudioPiece(order: firstOrder + k, stream: stream, track: track, index: k, count: n, codec: codec, bitrate: bitrate,
                                   seek: nil, anchor: nil, timeline: AudioTimeline(holeThreshold: f), silence: 0, feedFrom: feedFrom, feedTo: feedTo,
                                   keepFrom: keepFrom, keepTo: keepTo, packets: packets, trackSamples: total)
            guard k > 0 else { return piece }
            // The last frame laid at or before the piece's first fed sample, and a few frames before it to decode from.
            var lo = 0, hi = marks.count - 1
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if marks[mid].laidBefore <= feedFrom { lo = mid } else { hi = mid - 1 }
            }
            piece.anchor = marks[lo].time
            // A piece whose pre-roll reaches the track's start starts as the single pass does: no silence.
            piece.silence = feedFrom > 0 ? silence : 0
            piece.timeline = AudioTimeline(holeThreshold: f, start: timeline.start, laid: marks[lo].laidBefore)
            let from = lo - AudioJoin.decoderWarmup
            piece.seek = from > 0 ? marks[from].time : nil
            return piece
        }
    }
}

/// What encoding an audio piece made.
package struct AudioPieceResult: Sendable {
    package var packets: Int
    package var bytes: Int64
    package var checksum: UInt32
    /// Samples the encoder was given (pre-roll and post-roll included).
    package var samples: Int64
    /// Wall seconds from the start until the first frame was laid for the encoder, and from the end of stream
    /// until the file was sealed (see `FixedCost`).
    package var startupSeconds: Double? = nil
    package var flushSeconds: Double? = nil
}

/// Encodes one audio piece into a packet file and seals it: the unit of work of the audio pieces, as a segment
/// attempt is for the video (a small value describing the piece, the input, and the path to write).
package struct AudioPieceEncoder {
    package var source: String
    package var piece: AudioPiece
    package var outputPath: String
    package var expect: FileIdentity? = nil
    /// A linear gain on the piece's samples (`--loudness`).
    package var gain: Double = 1

    package static let missedStart = "find the audio piece's first frame"

    package func run() throws(VSliceError) -> AudioPieceResult {
        let origin = monotonicSeconds()
        var firstFrame: Double? = nil
        let decoding = try AudioDecoding(source: source, stream: piece.stream, expect: expect)
        let sink = try AudioSink(codec: piece.codec, decoder: decoding.decoder, bitrate: piece.bitrate, outputPath: outputPath)
        guard sink.frameSize == piece.timeline.holeThreshold else {
            throw failure("the encoder's frame size is \(sink.frameSize), the plan's \(piece.timeline.holeThreshold)")
        }
        sink.gain = gain
        let layer = try AudioLayer(decoding: decoding, sink: sink, timeline: piece.timeline)
        layer.fifo.from = piece.feedFrom
        layer.fifo.until = piece.feedTo ?? .max
        sink.keep = piece.keepFrom..<(piece.keepTo ?? .max)
        if piece.silence > 0, let start = piece.timeline.start {
            sink.origin = start
            try sink.encodeSilence(frames: piece.silence, before: piece.feedFrom)
        }
        if let seek = piece.seek { try decoding.seek(to: seek) }
        let outTB = AVRational(num: 1, den: sink.format.rate)
        var laying = piece.anchor == nil
        try decoding.frames(tolerating: { !laying }) { (frame) throws(VSliceError) in
            if !laying, let anchor = piece.anchor {
                let ts = frame.bestEffortTimestamp
                guard ts != AV_NOPTS, ts >= anchor else { return true }
                guard ts == anchor else { throw failure("no frame at \(anchor) after the seek (next: \(ts))", missed: true) }
                laying = true
            }
            if firstFrame == nil { firstFrame = monotonicSeconds() }
            try layer.lay(frame, time: decoding.time(of: frame, in: outTB))
            sink.origin = layer.timeline.start ?? 0
            try sink.encode(from: layer.fifo, final: false)
            return piece.feedTo.map { layer.timeline.laid < $0 } ?? true
        }
        guard laying else { throw failure("the stream ended before its frame \(piece.anchor ?? 0)", missed: true) }
        if let feedTo = piece.feedTo, layer.timeline.laid < feedTo {
            throw failure("the track ended at sample \(layer.timeline.laid), before the piece's end \(feedTo)")
        }
        let flushFrom = monotonicSeconds()
        if piece.feedTo == nil { try layer.flush() }
        try sink.encode(from: layer.fifo, final: true)
        try sink.finish()
        let flushed = monotonicSeconds() - flushFrom
        try check(sink)
        return AudioPieceResult(packets: sink.packetsWritten, bytes: sink.bytes, checksum: sink.writer.sealedChecksum, samples: sink.samplesSent,
                                startupSeconds: firstFrame.map { $0 - origin }, flushSeconds: flushed)
    }

    /// The piece kept the packets the plan says, starting and ending where the single pass has them.
    private func check(_ sink: AudioSink) throws(VSliceError) {
        let origin = sink.origin, pad = sink.padding
        guard sink.packetsWritten == piece.packets else {
            throw failure("\(sink.packetsWritten) packets kept, the plan says \(piece.packets)")
        }
        if piece.index > 0, sink.firstTime != origin + piece.keepFrom - pad {
            throw failure("its first packet is at \(sink.firstTime ?? -1), not \(origin + piece.keepFrom - pad)")
        }
        // The last piece ends as the single pass does: it encodes the same samples from its pre-roll on.
        if let keepTo = piece.keepTo, sink.endTime != origin + keepTo - pad {
            throw failure("it ends at \(sink.endTime ?? -1), not \(origin + keepTo - pad)")
        }
    }

    /// A failure of this piece that repeats (deterministic): `missed` when decoding after the seek did not
    /// meet the frame the map recorded.
    private func failure(_ why: String, missed: Bool = false) -> VSliceError {
        var e = VSliceError(.processing, missed ? Self.missedStart : "encode audio piece \(piece.index) of track \(piece.track)",
                            path: source, reason: why)
        e.deterministic = true
        return e
    }

    package init(source: String, piece: AudioPiece, outputPath: String, expect: FileIdentity? = nil) {
        self.source = source
        self.piece = piece
        self.outputPath = outputPath
        self.expect = expect
    }
}

/// Joins a track's sealed pieces into one packet file: the same stream parameters, every packet starting where
/// the one before it ends.
package enum AudioPieceJoiner {
    package static func join(_ pieces: [String], into output: String) throws(VSliceError) -> (packets: Int, bytes: Int64) {
        let readers = try pieces.map { (p) throws(VSliceError) in try PacketFileReader(path: p) }
        guard let first = readers.first else { throw VSliceError(.processing, "join audio pieces", path: output, reason: "no pieces") }
        let writer = try PacketFileWriter(path: output, params: first.params)
        let packet = Packet()
        var end: Int64? = nil
        for r in readers {
            guard r.params == first.params else {
                throw VSliceError(.processing, "join audio pieces", path: r.path, reason: "its stream parameters differ from the first piece's")
            }
            while try r.next(into: packet) {
                if let end, packet.pts != end {
                    throw VSliceError(.processing, "join audio pieces", path: r.path,
                                      reason: "a packet at \(packet.pts) follows one that ends at \(end)")
                }
                end = packet.pts + packet.duration
                try writer.write(packet)
            }
        }
        try writer.finish()
        return (Int(writer.packetCount), writer.bytesWritten)
    }
}

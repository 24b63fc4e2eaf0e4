import CFFmpeg
import Foundation

/// A point on the source's timeline: `ticks` in `timeBase`.
public struct Timestamp: Codable, Sendable, Equatable {
    public var ticks: Int64
    public var timeBase: Ratio
    func rescaled(to tb: AVRational) -> Int64 { av_rescale_q(ticks, timeBase.av, tb) }
}

public struct MergeResult: Codable, Sendable {
    public var videoPackets: Int
    public var audioPackets: Int
    public var dtsRepaired: Int
    public var bytes: Int64
}

/// Concatenates the encoded segments onto one timeline, interleaves the audio, and writes the container.
/// Packets keep their source timestamps, shifted so the earliest stream starts at 0 (as ffmpeg does); the
/// opening DTS of each segment (below its first PTS, from B-frame reordering) is repaired where it would not
/// be strictly above the previous segment's last DTS, keeping DTS ≤ PTS.
struct Merger {
    var segments: [String]
    var audio: String?
    var output: String
    /// Container short name (`mp4`, `mov`, `matroska`).
    var format: String
    /// Source time subtracted from every timestamp.
    var base: Timestamp
    /// The source video's display matrix (rotation), copied to the output stream.
    var displayMatrix: Data?

    func run() throws(VSliceError) -> MergeResult {
        guard !segments.isEmpty else {
            throw VSliceError(.processing, "merge", path: output, reason: "no segments")
        }
        let first = try PacketFileReader(path: segments[0])
        let params = first.params
        let audioReader = try audio.map { (p) throws(VSliceError) in try PacketFileReader(path: p) }

        let out = try OutputFile(path: output, format: format)
        let vOut = try out.addStream(params)
        if let displayMatrix, displayMatrix.count == 36,
           let side = av_stream_new_side_data(vOut, AV_PKT_DATA_DISPLAYMATRIX, 36) {
            displayMatrix.copyBytes(to: side, count: 36)
        }
        let aOut = try audioReader.map { (r) throws(VSliceError) in try out.addStream(r.params) }
        var options: [(String, String)] = []
        if format == "mp4" || format == "mov" {
            options.append(("movflags", "+faststart"))
            // Edit lists (start offsets) are in the movie time scale, 1/1000 by default: use the video's, so a
            // stream starting at 21.333 ms is not moved to 21 ms.
            if params.timeBase.num == 1 && params.timeBase.den > 1000 {
                options.append(("movie_timescale", String(params.timeBase.den)))
            }
        }
        try out.writeHeader(options: options)

        let vTB = params.timeBase.av
        let vMuxTB = vOut.pointee.time_base
        var vShift = base.rescaled(to: vTB)
        let aTB = audioReader?.params.timeBase.av ?? AVRational(num: 1, den: 1)
        var aShift = base.rescaled(to: aTB)
        // Matroska cannot store a timestamp below 0, and its muxer's own fix-up shifts by the first packet
        // it is handed, in whole milliseconds, which can leave a stream that starts earlier clamped at 0 (a
        // source's audio at −7 ms plus AAC priming). Everything is moved later by the same whole number of
        // milliseconds instead, so the streams keep their offsets.
        if format == "matroska" {
            let lead = try Merger.earliestTime(segment: segments[0], vShift: vShift, audio: audio, aShift: aShift)
            if lead < 0 {
                let ms = Int64((-lead * 1000).rounded(.up))
                vShift -= av_rescale_q(ms, AVRational(num: 1, den: 1000), vTB)
                aShift -= av_rescale_q(ms, AVRational(num: 1, den: 1000), aTB)
            }
        }

        var result = MergeResult(videoPackets: 0, audioPackets: 0, dtsRepaired: 0, bytes: 0)
        var segIndex = 0
        var current: PacketFileReader? = first
        let vPacket = Packet(), aPacket = Packet()
        var lastDts = Int64.min

        func nextVideo() throws(VSliceError) -> Bool {
            while let reader = current {
                if try reader.next(into: vPacket) {
                    vPacket.pts -= vShift
                    vPacket.dts -= vShift
                    av_packet_rescale_ts(vPacket.ptr, vTB, vMuxTB)
                    if vPacket.dts <= lastDts {
                        vPacket.dts = lastDts + 1
                        result.dtsRepaired += 1
                        if vPacket.dts > vPacket.pts {
                            throw VSliceError(.processing, "merge segment \(segIndex)", path: output,
                                              reason: "cannot order timestamps (dts \(vPacket.dts) > pts \(vPacket.pts))")
                        }
                    }
                    lastDts = vPacket.dts
                    return true
                }
                segIndex += 1
                guard segIndex < segments.count else { current = nil; return false }
                let r = try PacketFileReader(path: segments[segIndex])
                guard r.params.extradata == params.extradata, r.params.width == params.width,
                      r.params.height == params.height, r.params.codecID == params.codecID else {
                    throw VSliceError(.processing, "merge", path: segments[segIndex],
                                      reason: "segment \(segIndex) was encoded with different codec parameters")
                }
                current = r
            }
            return false
        }
        func nextAudio() throws(VSliceError) -> Bool {
            guard let audioReader, let aOut else { return false }
            guard try audioReader.next(into: aPacket) else { return false }
            aPacket.pts -= aShift
            aPacket.dts -= aShift
            av_packet_rescale_ts(aPacket.ptr, aTB, aOut.pointee.time_base)
            return true
        }

        var haveV = try nextVideo()
        var haveA = try nextAudio()
        while haveV || haveA {
            try Cancellation.throwIfAborted("merge", path: output)
            let takeVideo: Bool
            if haveV && haveA {
                takeVideo = av_compare_ts(vPacket.dts, vMuxTB, aPacket.dts, aOut!.pointee.time_base) <= 0
            } else {
                takeVideo = haveV
            }
            if takeVideo {
                vPacket.ptr.pointee.stream_index = vOut.pointee.index
                try out.write(vPacket)
                result.videoPackets += 1
                if result.videoPackets == 50 { Fault.hit("concat") }
                haveV = try nextVideo()
            } else {
                aPacket.ptr.pointee.stream_index = aOut!.pointee.index
                try out.write(aPacket)
                result.audioPackets += 1
                haveA = try nextAudio()
            }
        }
        result.bytes = try out.finish()
        return result
    }

    /// The earliest time (seconds, after the shift) of the first video packet's DTS and the first audio packet.
    static func earliestTime(segment: String, vShift: Int64, audio: String?, aShift: Int64) throws(VSliceError) -> Double {
        let packet = Packet()
        var earliest = 0.0
        let v = try PacketFileReader(path: segment)
        if try v.next(into: packet) {
            let t = packet.dts != AV_NOPTS ? packet.dts : packet.pts
            earliest = min(earliest, Double(t - vShift) * v.params.timeBase.value)
        }
        if let audio {
            let a = try PacketFileReader(path: audio)
            if try a.next(into: packet) {
                let t = packet.dts != AV_NOPTS ? packet.dts : packet.pts
                earliest = min(earliest, Double(t - aShift) * a.params.timeBase.value)
            }
        }
        return earliest
    }
}

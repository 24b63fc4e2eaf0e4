import CFFmpeg
import Foundation

/// A point on the source's timeline: `ticks` in `timeBase`.
public struct Timestamp: Codable, Sendable, Equatable {
    public var ticks: Int64
    public var timeBase: Ratio
    func rescaled(to tb: AVRational) -> Int64 { av_rescale_q(ticks, timeBase.av, tb) }
    /// In `tb`, rounded up (the first tick at or after this point).
    func rescaledUp(to tb: Ratio) -> Int64 { av_rescale_q_rnd(ticks, timeBase.av, tb.av, AV_ROUND_UP) }
}

public struct MergeResult: Codable, Sendable {
    public var videoPackets: Int
    public var audioPackets: Int
    public var dtsRepaired: Int
    public var bytes: Int64
}

/// Concatenates the encoded segments onto one timeline, interleaves the other tracks (audio, subtitles), and
/// writes the container with the source's tags, chapters and attachments.
/// Packets keep their source timestamps, shifted so the earliest stream starts at 0 (as ffmpeg does); the
/// opening DTS of each segment (below its first PTS, from B-frame reordering) is repaired where it would not
/// be strictly above the previous segment's last DTS, keeping DTS ≤ PTS.
struct Merger {
    /// A track other than the video: its packet file, and the source stream's tags and dispositions.
    struct Track {
        var path: String
        var tags: Tags = []
        var disposition: Int32 = 0
    }
    var segments: [String]
    /// Audio tracks then subtitles, in the order they get in the output.
    var tracks: [Track] = []
    var output: String
    /// Container short name (`mp4`, `mov`, `matroska`).
    var format: String
    /// Source time subtracted from every timestamp.
    var base: Timestamp
    /// The source video's display matrix (rotation), copied to the output stream.
    var displayMatrix: Data?
    /// The source video stream's tags and dispositions.
    var videoTags: Tags = []
    var videoDisposition: Int32 = 0
    /// Global tags, chapters, attachments and attached pictures of the source, as the stream plan keeps them.
    var layout: SourceLayout? = nil
    var attachments: [Int] = []
    var attachedPictures: [Int] = []
    /// HDR10 static metadata for the video stream's side data.
    var hdr: HDRMetadata? = nil
    /// The video's frame rate when constant: Matroska writes it as the track's default duration.
    var frameRate: Ratio? = nil

    init(segments: [String], tracks: [Track] = [], output: String, format: String, base: Timestamp,
         displayMatrix: Data?) {
        self.segments = segments
        self.tracks = tracks
        self.output = output
        self.format = format
        self.base = base
        self.displayMatrix = displayMatrix
    }

    func run() throws(VSliceError) -> MergeResult {
        guard !segments.isEmpty else {
            throw VSliceError(.processing, "merge", path: output, reason: "no segments")
        }
        let first = try PacketFileReader(path: segments[0])
        let params = first.params
        let readers = try tracks.map { (t) throws(VSliceError) in try PacketFileReader(path: t.path) }

        let out = try OutputFile(path: output, format: format)
        let vOut = try out.addStream(params)
        if let displayMatrix, displayMatrix.count == 36,
           let side = av_stream_new_side_data(vOut, AV_PKT_DATA_DISPLAYMATRIX, 36) {
            displayMatrix.copyBytes(to: side, count: 36)
        }
        OutputFile.setTags(SourceLayout.carried(videoTags), on: vOut)
        hdr?.apply(to: vOut)
        if let frameRate { vOut.pointee.avg_frame_rate = frameRate.av }
        // HEVC in MP4/MOV as `hvc1` (parameter sets in the sample entry only), which Apple's players require.
        if (format == "mp4" || format == "mov") && params.codecID == AV_CODEC_ID_HEVC.rawValue {
            vOut.pointee.codecpar.pointee.codec_tag = UInt32(UInt8(ascii: "h")) | UInt32(UInt8(ascii: "v")) << 8
                | UInt32(UInt8(ascii: "c")) << 16 | UInt32(UInt8(ascii: "1")) << 24
        }
        vOut.pointee.disposition = (videoDisposition & ~AV_DISPOSITION_ATTACHED_PIC) | AV_DISPOSITION_DEFAULT
        let outs = try readers.map { (r) throws(VSliceError) in try out.addStream(r.params) }
        // Dispositions as in the source; a type none of whose tracks is marked default gets its first one
        // marked (as ffmpeg does), so players pick a track and Matroska's default flags say so.
        var defaultSeen = Set<Int32>()
        for (i, t) in tracks.enumerated() where t.disposition & AV_DISPOSITION_DEFAULT != 0 {
            defaultSeen.insert(readers[i].params.mediaType)
        }
        for (i, t) in tracks.enumerated() {
            OutputFile.setTags(SourceLayout.carried(t.tags), on: outs[i])
            var d = t.disposition
            let type = readers[i].params.mediaType
            if type == AVMEDIA_TYPE_AUDIO.rawValue && !defaultSeen.contains(type) {
                d |= AV_DISPOSITION_DEFAULT
                defaultSeen.insert(type)
            }
            outs[i].pointee.disposition = d
        }
        var pictures: [(UnsafeMutablePointer<AVStream>, Data)] = []
        if let layout {
            out.setTags(SourceLayout.carried(layout.tags))
            try out.addChapters(layout.chapters, shift: Double(base.ticks) * base.timeBase.value)
            for i in attachments { try out.addAttachment(layout.streams[i]) }
            for i in attachedPictures {
                guard let p = layout.streams[i].params, let data = layout.streams[i].data else { continue }
                let st = try out.addStream(p)
                st.pointee.disposition = AV_DISPOSITION_ATTACHED_PIC
                OutputFile.setTags(SourceLayout.carried(layout.streams[i].tags), on: st)
                pictures.append((st, data))
            }
        }
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
        for (st, data) in pictures {
            let pkt = Packet()
            try ffCheck(av_new_packet(pkt.ptr, Int32(data.count)), "allocate packet", path: output)
            data.withUnsafeBytes { pkt.ptr.pointee.data.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: data.count) }
            pkt.ptr.pointee.stream_index = st.pointee.index
            pkt.ptr.pointee.flags = AV_PKT_FLAG_KEY
            try out.write(pkt)
        }

        let vTB = params.timeBase.av
        let vMuxTB = vOut.pointee.time_base
        var vShift = base.rescaled(to: vTB)
        let tbs = readers.map { $0.params.timeBase.av }
        var shifts = tbs.map { base.rescaled(to: $0) }
        // FFmpeg 5.1's Matroska demuxer moves Opus packets earlier by the codec delay it reads (the pre-skip),
        // which its muxer does not add: written as they are, they would read back that much early (ffmpeg's
        // own stream copy loses 6.5 ms so). They are written that much later instead.
        if format == "matroska" {
            for (i, r) in readers.enumerated() where r.params.codecID == AV_CODEC_ID_OPUS.rawValue && r.params.initialPadding > 0 {
                shifts[i] -= av_rescale_q(Int64(r.params.initialPadding), AVRational(num: 1, den: 48000), tbs[i])
            }
        }
        // Matroska cannot store a timestamp below 0, and its muxer's own fix-up shifts by the first packet
        // it is handed, in whole milliseconds, which can leave a stream that starts earlier clamped at 0 (a
        // source's audio at −7 ms plus AAC priming). Everything is moved later by the same whole number of
        // milliseconds instead, so the streams keep their offsets.
        if format == "matroska" {
            let lead = try Merger.earliestTime(segment: segments[0], vShift: vShift, others: tracks.map(\.path), shifts: shifts)
            if lead < 0 {
                let ms = Int64((-lead * 1000).rounded(.up))
                let msTB = AVRational(num: 1, den: 1000)
                vShift -= av_rescale_q(ms, msTB, vTB)
                for i in shifts.indices { shifts[i] -= av_rescale_q(ms, msTB, tbs[i]) }
            }
        }

        var result = MergeResult(videoPackets: 0, audioPackets: 0, dtsRepaired: 0, bytes: 0)
        var segIndex = 0
        var current: PacketFileReader? = first
        let vPacket = Packet()
        let packets = readers.map { _ in Packet() }
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
        func nextTrack(_ i: Int) throws(VSliceError) -> Bool {
            let p = packets[i]
            guard try readers[i].next(into: p) else { return false }
            if p.dts == AV_NOPTS { p.dts = p.pts }
            if p.pts != AV_NOPTS { p.pts -= shifts[i] }
            p.dts -= shifts[i]
            av_packet_rescale_ts(p.ptr, tbs[i], outs[i].pointee.time_base)
            return true
        }

        var haveV = try nextVideo()
        var have = try readers.indices.map { (i) throws(VSliceError) in try nextTrack(i) }
        while true {
            try Cancellation.throwIfAborted("merge", path: output)
            // The packet with the lowest DTS goes next (the video's on a tie).
            var pick = -1, found = haveV
            var bestDts = vPacket.dts, bestTB = vMuxTB
            for i in readers.indices where have[i] {
                if !found || av_compare_ts(packets[i].dts, outs[i].pointee.time_base, bestDts, bestTB) < 0 {
                    pick = i
                    bestDts = packets[i].dts
                    bestTB = outs[i].pointee.time_base
                    found = true
                }
            }
            guard found else { break }
            if pick == -1 {
                vPacket.ptr.pointee.stream_index = vOut.pointee.index
                try out.write(vPacket)
                result.videoPackets += 1
                if result.videoPackets == 50 { Fault.hit("concat") }
                haveV = try nextVideo()
            } else {
                packets[pick].ptr.pointee.stream_index = outs[pick].pointee.index
                try out.write(packets[pick])
                if readers[pick].params.mediaType == AVMEDIA_TYPE_AUDIO.rawValue { result.audioPackets += 1 }
                have[pick] = try nextTrack(pick)
            }
        }
        result.bytes = try out.finish()
        return result
    }

    /// The earliest time (seconds, after the shifts) of the first video packet's DTS and the other tracks' first packets.
    /// The first video frame's time in a segment file (the earliest of its first packets: an encoder's first
    /// frame shown is its first coded); nil when it has none.
    static func firstFrameTime(segment: String) throws(VSliceError) -> Timestamp? {
        let r = try PacketFileReader(path: segment)
        let packet = Packet()
        var first: Int64? = nil
        for _ in 0..<16 {
            guard try r.next(into: packet) else { break }
            if packet.pts != AV_NOPTS { first = min(first ?? packet.pts, packet.pts) }
        }
        return first.map { Timestamp(ticks: $0, timeBase: r.params.timeBase) }
    }

    static func earliestTime(segment: String, vShift: Int64, others: [String], shifts: [Int64]) throws(VSliceError) -> Double {
        let packet = Packet()
        var earliest = 0.0
        for (i, path) in ([segment] + others).enumerated() {
            let r = try PacketFileReader(path: path)
            if try r.next(into: packet) {
                let t = packet.dts != AV_NOPTS ? packet.dts : packet.pts
                guard t != AV_NOPTS else { continue }
                earliest = min(earliest, Double(t - (i == 0 ? vShift : shifts[i - 1])) * r.params.timeBase.value)
            }
        }
        return earliest
    }
}

import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// A point on the source's timeline: `ticks` in `timeBase`.
public struct Timestamp: Codable, Sendable, Equatable {
    public var ticks: Int64
    public var timeBase: Ratio
    package func rescaled(to tb: AVRational) -> Int64 { av_rescale_q(ticks, timeBase.av, tb) }
    /// In `tb`, rounded up (the first tick at or after this point).
    package func rescaledUp(to tb: Ratio) -> Int64 { av_rescale_q_rnd(ticks, timeBase.av, tb.av, AV_ROUND_UP) }

    package init(ticks: Int64, timeBase: Ratio) {
        self.ticks = ticks
        self.timeBase = timeBase
    }
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
package struct Merger {
    /// A track other than the video: its packet file, and the source stream's tags and dispositions.
    package struct Track {
        package var path: String
        package var tags: Tags = []
        package var disposition: Int32 = 0

        package init(path: String, tags: Tags = [], disposition: Int32 = 0) {
            self.path = path
            self.tags = tags
            self.disposition = disposition
        }
    }
    package var segments: [String]
    /// Audio tracks then subtitles, in the order they get in the output.
    package var tracks: [Track] = []
    package var output: String
    /// Container short name (`mp4`, `mov`, `matroska`).
    package var format: String
    /// Source time subtracted from every timestamp.
    package var base: Timestamp
    /// The source video's display matrix (rotation), copied to the output stream.
    package var displayMatrix: Data?
    /// The source video stream's tags and dispositions.
    package var videoTags: Tags = []
    package var videoDisposition: Int32 = 0
    /// Global tags, chapters, attachments and attached pictures of the source, as the stream plan keeps them.
    package var layout: SourceLayout? = nil
    package var attachments: [Int] = []
    package var attachedPictures: [Int] = []
    /// HDR10 static metadata for the video stream's side data.
    package var hdr: HDRMetadata? = nil
    /// The video's frame rate when constant: Matroska writes it as the track's default duration.
    package var frameRate: Ratio? = nil

    package init(segments: [String], tracks: [Track] = [], output: String, format: String, base: Timestamp,
         displayMatrix: Data?) {
        self.segments = segments
        self.tracks = tracks
        self.output = output
        self.format = format
        self.base = base
        self.displayMatrix = displayMatrix
    }

    /// Merges: opens the output and its streams, lines the tracks up on one timeline, interleaves the video
    /// segments' packets (DTS repaired at the joins) with the other tracks', and finishes the file.
    package func run() throws(VSliceError) -> MergeResult {
        guard !segments.isEmpty else {
            throw VSliceError(.processing, "merge", path: output, reason: "no segments")
        }
        let first = try PacketFileReader(path: segments[0])
        let readers = try tracks.map { (t) throws(VSliceError) in try PacketFileReader(path: t.path) }
        let streams = try openOutput(video: first.params, tracks: readers)
        let (vShift, shifts) = try timelineShifts(video: first.params, tracks: readers)
        let video = SegmentChain(merger: self, first: first, shift: vShift, muxTimeBase: streams.video.pointee.time_base)
        let others = readers.indices.map { TrackSource(reader: readers[$0], shift: shifts[$0], stream: streams.tracks[$0]) }
        var result = try interleave(video: video, tracks: others, into: streams)
        result.bytes = try streams.file.finish()
        return result
    }

    /// The output file with its header written: the video stream, the other tracks' streams, and the source's
    /// tags, chapters, attachments and attached pictures.
    package struct Output {
        package var file: OutputFile
        package var video: UnsafeMutablePointer<AVStream>
        package var tracks: [UnsafeMutablePointer<AVStream>]
    }

    package func openOutput(video params: StreamParams, tracks readers: [PacketFileReader]) throws(VSliceError) -> Output {
        let out = try OutputFile(path: output, format: format)
        let vOut = try addVideoStream(params, to: out)
        let outs = try addTrackStreams(readers, to: out)
        let pictures = try addSourceLayout(to: out)
        try writeHeader(out, videoTimeBase: params.timeBase, pictures: pictures)
        return Output(file: out, video: vOut, tracks: outs)
    }

    /// The video stream: the segments' parameters, the source's rotation, tags, dispositions, HDR metadata
    /// and (constant) frame rate.
    package func addVideoStream(_ params: StreamParams, to out: OutputFile) throws(VSliceError) -> UnsafeMutablePointer<AVStream> {
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
        return vOut
    }

    /// One stream per other track, with its tags and dispositions.
    package func addTrackStreams(_ readers: [PacketFileReader], to out: OutputFile) throws(VSliceError) -> [UnsafeMutablePointer<AVStream>] {
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
        return outs
    }

    /// The source's global tags, chapters (on the output's timeline), attachments and attached pictures'
    /// streams; returns the pictures, written once the header is.
    package func addSourceLayout(to out: OutputFile) throws(VSliceError) -> [(UnsafeMutablePointer<AVStream>, Data)] {
        guard let layout else { return [] }
        var pictures: [(UnsafeMutablePointer<AVStream>, Data)] = []
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
        return pictures
    }

    /// Writes the header (MP4/MOV: `+faststart`, the video's time scale) and the attached pictures.
    package func writeHeader(_ out: OutputFile, videoTimeBase: Ratio, pictures: [(UnsafeMutablePointer<AVStream>, Data)]) throws(VSliceError) {
        var options: [(String, String)] = []
        if format == "mp4" || format == "mov" {
            options.append(("movflags", "+faststart"))
            // Edit lists (start offsets) are in the movie time scale, 1/1000 by default: use the video's, so a
            // stream starting at 21.333 ms is not moved to 21 ms.
            if videoTimeBase.num == 1 && videoTimeBase.den > 1000 {
                options.append(("movie_timescale", String(videoTimeBase.den)))
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
    }

    /// What is subtracted from the video's and each track's timestamps (in their own time bases): `base`, and
    /// in Matroska the corrections below.
    package func timelineShifts(video params: StreamParams, tracks readers: [PacketFileReader]) throws(VSliceError) -> (Int64, [Int64]) {
        let vTB = params.timeBase.av
        var vShift = base.rescaled(to: vTB)
        let tbs = readers.map { $0.params.timeBase.av }
        var shifts = tbs.map { base.rescaled(to: $0) }
        guard format == "matroska" else { return (vShift, shifts) }
        // FFmpeg 5.1's Matroska demuxer moves Opus packets earlier by the codec delay it reads (the pre-skip),
        // which its muxer does not add: written as they are, they would read back that much early (ffmpeg's
        // own stream copy loses 6.5 ms so). They are written that much later instead.
        for (i, r) in readers.enumerated() where r.params.codecID == AV_CODEC_ID_OPUS.rawValue && r.params.initialPadding > 0 {
            shifts[i] -= av_rescale_q(Int64(r.params.initialPadding), AVRational(num: 1, den: 48000), tbs[i])
        }
        // Matroska cannot store a timestamp below 0, and its muxer's own fix-up shifts by the first packet
        // it is handed, in whole milliseconds, which can leave a stream that starts earlier clamped at 0 (a
        // source's audio at −7 ms plus AAC priming). Everything is moved later by the same whole number of
        // milliseconds instead, so the streams keep their offsets.
        let lead = try Merger.earliestTime(segment: segments[0], vShift: vShift, others: tracks.map(\.path), shifts: shifts)
        if lead < 0 {
            let ms = Int64((-lead * 1000).rounded(.up))
            let msTB = AVRational(num: 1, den: 1000)
            vShift -= av_rescale_q(ms, msTB, vTB)
            for i in shifts.indices { shifts[i] -= av_rescale_q(ms, msTB, tbs[i]) }
        }
        return (vShift, shifts)
    }

    /// Writes every packet, the one with the lowest DTS next (the video's on a tie).
    package func interleave(video: SegmentChain, tracks: [TrackSource], into out: Output) throws(VSliceError) -> MergeResult {
        var result = MergeResult(videoPackets: 0, audioPackets: 0, dtsRepaired: 0, bytes: 0)
        var haveV = try video.next()
        var have = try tracks.map { (t) throws(VSliceError) in try t.next() }
        while true {
            try Cancellation.throwIfAborted("merge", path: output)
            var pick = -1, found = haveV
            var bestDts = video.packet.dts, bestTB = video.muxTimeBase
            for (i, t) in tracks.enumerated() where have[i] {
                if !found || av_compare_ts(t.packet.dts, t.stream.pointee.time_base, bestDts, bestTB) < 0 {
                    pick = i
                    bestDts = t.packet.dts
                    bestTB = t.stream.pointee.time_base
                    found = true
                }
            }
            guard found else { break }
            if pick == -1 {
                video.packet.ptr.pointee.stream_index = out.video.pointee.index
                try out.file.write(video.packet)
                result.videoPackets += 1
                if result.videoPackets == 50 { Fault.hit("concat") }
                haveV = try video.next()
            } else {
                let t = tracks[pick]
                t.packet.ptr.pointee.stream_index = t.stream.pointee.index
                try out.file.write(t.packet)
                if t.reader.params.mediaType == AVMEDIA_TYPE_AUDIO.rawValue { result.audioPackets += 1 }
                have[pick] = try t.next()
            }
        }
        result.dtsRepaired = video.repair.repaired
        return result
    }

    /// The video segments' packets one after the other, on the output's timeline (in the muxer's time
    /// base), their DTS repaired; each next segment must have the first one's codec parameters.
    package final class SegmentChain {
        package let segments: [String]
        package let output: String
        package let params: StreamParams
        package let shift: Int64
        package let muxTimeBase: AVRational
        package let packet = Packet()
        package private(set) var repair = DTSRepair()
        private var current: PacketFileReader?
        private var index = 0

        package init(merger: Merger, first: PacketFileReader, shift: Int64, muxTimeBase: AVRational) {
            segments = merger.segments
            output = merger.output
            params = first.params
            current = first
            self.shift = shift
            self.muxTimeBase = muxTimeBase
        }

        /// Reads the next packet into `packet`; false after the last segment's last.
        package func next() throws(VSliceError) -> Bool {
            while let reader = current {
                if try reader.next(into: packet) {
                    packet.pts -= shift
                    packet.dts -= shift
                    av_packet_rescale_ts(packet.ptr, params.timeBase.av, muxTimeBase)
                    guard let dts = repair.dts(pts: packet.pts, dts: packet.dts) else {
                        throw VSliceError(.processing, "merge segment \(index)", path: output,
                                          reason: "cannot order timestamps (dts \(repair.last + 1) > pts \(packet.pts))")
                    }
                    packet.dts = dts
                    return true
                }
                index += 1
                guard index < segments.count else { current = nil; return false }
                let r = try PacketFileReader(path: segments[index])
                guard r.params.extradata == params.extradata, r.params.width == params.width,
                      r.params.height == params.height, r.params.codecID == params.codecID else {
                    throw VSliceError(.processing, "merge", path: segments[index],
                                      reason: "segment \(index) was encoded with different codec parameters")
                }
                current = r
            }
            return false
        }
    }

    /// A track other than the video: its packets on the output's timeline, in its stream's time base.
    package struct TrackSource {
        package let reader: PacketFileReader
        package let shift: Int64
        package let stream: UnsafeMutablePointer<AVStream>
        package let packet = Packet()

        /// Reads the next packet into `packet`; false at the end.
        package func next() throws(VSliceError) -> Bool {
            guard try reader.next(into: packet) else { return false }
            if packet.dts == AV_NOPTS { packet.dts = packet.pts }
            if packet.pts != AV_NOPTS { packet.pts -= shift }
            packet.dts -= shift
            av_packet_rescale_ts(packet.ptr, reader.params.timeBase.av, stream.pointee.time_base)
            return true
        }
    }

    /// The first video frame's time in a segment file (the earliest of its first packets: an encoder's first
    /// frame shown is its first coded); nil when it has none.
    package static func firstFrameTime(segment: String) throws(VSliceError) -> Timestamp? {
        let r = try PacketFileReader(path: segment)
        let packet = Packet()
        var first: Int64? = nil
        for _ in 0..<16 {
            guard try r.next(into: packet) else { break }
            if packet.pts != AV_NOPTS { first = min(first ?? packet.pts, packet.pts) }
        }
        return first.map { Timestamp(ticks: $0, timeBase: r.params.timeBase) }
    }

    /// The earliest time (seconds, after the shifts) of the first video packet's DTS and the other tracks' first packets.
    package static func earliestTime(segment: String, vShift: Int64, others: [String], shifts: [Int64]) throws(VSliceError) -> Double {
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

/// Keeps the video's DTS strictly increasing across segment joins. With B-frames each segment opens with DTS
/// below its first PTS (the encoder's reorder delay); with variable frame intervals those opening DTS can fall
/// at or below the previous segment's last DTS. Such a DTS is moved to one tick after the previous one, which
/// is possible as long as it stays at or below the packet's PTS.
package struct DTSRepair {
    /// The last DTS handed out.
    package private(set) var last = Int64.min
    /// How many packets got a DTS other than their own.
    package private(set) var repaired = 0

    /// The DTS to write for the next packet (in decode order): its own when above the previous one, else one
    /// tick after it; nil when that would pass the packet's PTS (no order of timestamps is valid then).
    package mutating func dts(pts: Int64, dts: Int64) -> Int64? {
        var dts = dts
        if dts <= last {
            dts = last + 1
            repaired += 1
            if dts > pts { return nil }
        }
        last = dts
        return dts
    }
}

import Foundation
import TestScratch
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

/// The merge's DTS repair: at a join, a segment's opening DTS (below its first PTS, from B-frame reordering) may
/// fall at or below the previous segment's last DTS; the merge moves it just past, keeping DTS ≤ PTS.
@Suite("merge: DTS repair")
struct MergeTests {
    // MARK: the repair itself

    @Test("DTS at or below the previous one moves one tick past it; the rest is untouched")
    func repairRule() {
        var r = DTSRepair()
        // Segment 1 (reorder delay 1): decode order pts 0 2 1 3 5 4, dts −1…4.
        let first: [(Int64, Int64)] = [(0, -1), (2, 0), (1, 1), (3, 2), (5, 3), (4, 4)]
        // Segment 2 (a deeper reorder delay): opens at dts 3, 4 — at or below 4.
        let second: [(Int64, Int64)] = [(6, 3), (8, 4), (7, 7), (9, 8), (11, 9), (10, 10)]
        let out = (first + second).map { r.dts(pts: $0.0, dts: $0.1) }
        #expect(out == [-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        #expect(r.repaired == 2)
    }

    @Test("a repair that would pass the packet's PTS is refused, and the last DTS stays")
    func repairImpossible() {
        var r = DTSRepair()
        #expect(r.dts(pts: 5, dts: 4) == 4)
        #expect(r.dts(pts: 4, dts: 3) == nil)   // 5 would be after its PTS 4
        #expect(r.last == 4)
        #expect(r.dts(pts: 5, dts: 4) == 5)    // equal to its PTS is allowed
        #expect(r.repaired == 2)
    }

    @Test("repairs cascade until the DTS catch up", arguments: [0, 1, 5])
    func cascade(_ lead: Int64) {
        var r = DTSRepair()
        _ = r.dts(pts: 100, dts: 100)
        // Ten packets whose DTS start `lead + 1` ticks too early, one tick apart: each needs a repair until the
        // bumped value meets its own.
        let dts = (0..<10).map { Int64(100 - lead) + Int64($0) }
        let out = dts.map { r.dts(pts: 1000, dts: $0) }
        #expect(out == (1...10).map { Int64(100) + Int64($0) })
        #expect(r.repaired == 10)
    }

    // MARK: through the merger, into FFmpeg's framecrc muxer (which lists every packet it is handed)

    static func params(_ json: String) -> StreamParams {
        try! JSONDecoder().decode(StreamParams.self, from: Data(json.utf8))
    }
    /// H.264 (27) by default; MJPEG (7) for a muxer that wants no codec headers.
    static func video(width: Int = 64, codec: Int = 27) -> StreamParams {
        params("""
            {"mediaType":0,"codecID":\(codec),"extradata":"","format":0,"bitRate":0,"profile":-99,"level":30,"width":\(width),"height":64,
             "sampleAspect":"1/1","fieldOrder":0,"colorRange":0,"colorPrimaries":2,"colorTransfer":2,"colorSpace":2,
             "chromaLocation":0,"videoDelay":0,"sampleRate":0,"channels":0,"channelOrder":0,"channelMask":0,"frameSize":0,
             "initialPadding":0,"trailingPadding":0,"timeBase":"1/25"}
            """)
    }
    static let audio = params("""
        {"mediaType":1,"codecID":86018,"extradata":"","format":8,"bitRate":128000,"profile":1,"level":0,"width":0,"height":0,
         "sampleAspect":"0/1","fieldOrder":0,"colorRange":0,"colorPrimaries":2,"colorTransfer":2,"colorSpace":2,
         "chromaLocation":0,"videoDelay":0,"sampleRate":48000,"channels":2,"channelOrder":1,"channelMask":3,"frameSize":1024,
         "initialPadding":0,"trailingPadding":0,"timeBase":"1/48000"}
        """)

    /// Writes a sealed packet file of (pts, dts) packets, each `duration` long.
    static func packetFile(_ path: String, _ params: StreamParams, _ packets: [(pts: Int64, dts: Int64)], duration: Int64) throws {
        let w = try PacketFileWriter(path: path, params: params)
        let p = Packet()
        for (i, t) in packets.enumerated() {
            try p.setPayload(size: 16, path: path) { $0.initializeMemory(as: UInt8.self, repeating: UInt8(i & 0xff)) }
            p.pts = t.pts; p.dts = t.dts; p.duration = duration
            try w.write(p)
        }
        try w.finish()
    }

    /// One packet as framecrc lists it: stream, dts, pts (in the stream's time base, `#tb`).
    struct Listed: Equatable { var stream: Int; var dts: Int64; var pts: Int64 }

    static func listing(_ path: String) throws -> (timeBases: [Int: Double], packets: [Listed]) {
        var tbs: [Int: Double] = [:], packets: [Listed] = []
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            if line.hasPrefix("#tb ") {
                // "#tb 0: 1/25"
                let parts = line.dropFirst(4).split(separator: ":")
                let r = parts[1].trimmingCharacters(in: .whitespaces).split(separator: "/")
                tbs[Int(parts[0])!] = Double(r[0])! / Double(r[1])!
            } else if !line.hasPrefix("#") {
                let f = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                packets.append(Listed(stream: Int(f[0])!, dts: Int64(f[1])!, pts: Int64(f[2])!))
            }
        }
        return (tbs, packets)
    }

    let segA: [(pts: Int64, dts: Int64)] = [(0, -1), (2, 0), (1, 1), (3, 2), (5, 3), (4, 4)]
    let segB: [(pts: Int64, dts: Int64)] = [(6, 3), (8, 4), (7, 7), (9, 8), (11, 9), (10, 10)]

    func merge(_ b: [(pts: Int64, dts: Int64)], bParams: StreamParams = video(), audio: Bool = false,
               in dir: URL) throws -> (MergeResult, String) {
        let a = dir.appendingPathComponent("a.vseg").path, bPath = dir.appendingPathComponent("b.vseg").path
        try Self.packetFile(a, Self.video(), segA, duration: 1)
        try Self.packetFile(bPath, bParams, b, duration: 1)
        var tracks: [Merger.Track] = []
        if audio {
            let path = dir.appendingPathComponent("audio.vseg").path
            // 0.48 s of 1024-sample packets from the video's start.
            try Self.packetFile(path, Self.audio, (0..<23).map { (Int64($0 * 1024), Int64($0 * 1024)) }, duration: 1024)
            tracks.append(Merger.Track(path: path))
        }
        let out = dir.appendingPathComponent("out.crc").path
        let merger = Merger(segments: [a, bPath], tracks: tracks, output: out, format: "framecrc",
                            base: Timestamp(ticks: 0, timeBase: Ratio(num: 1, den: 25)), displayMatrix: nil)
        return (try merger.run(), out)
    }

    func scratch() throws -> URL {
        let dir = TestScratch.url.appendingPathComponent("vslice-merge-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("two segments whose join overlaps in DTS: the muxer gets strictly increasing DTS ≤ PTS, every PTS kept, the audio interleaved")
    func mergedJoin() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (result, out) = try merge(segB, audio: true, in: dir)
        #expect(result.dtsRepaired == 2 && result.videoPackets == 12 && result.audioPackets == 23)
        let (tbs, packets) = try Self.listing(out)
        let video = packets.filter { $0.stream == 0 }
        #expect(tbs[0] == 1.0 / 25)
        #expect(video.map(\.pts) == (segA + segB).map(\.pts))
        #expect(video.map(\.dts) == (-1...10).map { Int64($0) })
        #expect(video.allSatisfy { $0.dts <= $0.pts })
        // Interleaved by time: no packet's DTS is before the one written before it.
        let times = packets.map { Double($0.dts) * tbs[$0.stream]! }
        #expect(zip(times, times.dropFirst()).allSatisfy { $0 <= $1 + 1e-9 }, "\(packets)")
        #expect(packets.filter { $0.stream == 1 }.count == 23)
    }

    @Test("a join no DTS can order (a packet shown before the previous one is decoded) fails the merge, naming the segment")
    func unorderable() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var b = segB
        b[0] = (pts: 4, dts: 3)
        let error = #expect(throws: VSliceError.self) { try merge(b, in: dir) }
        #expect(error?.kind == .processing)
        #expect(error?.description.contains("merge segment 1") == true)
        #expect(error?.description.contains("cannot order timestamps (dts 5 > pts 4)") == true)
    }

    @Test("a segment encoded with other codec parameters is refused")
    func otherParameters() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let error = #expect(throws: VSliceError.self) { try merge(segB, bParams: Self.video(width: 128), in: dir) }
        #expect(error?.description.contains("segment 1 was encoded with different codec parameters") == true)
    }
}

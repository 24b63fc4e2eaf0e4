import Foundation
import TestScratch
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

/// The sealed segment file: complete only with its trailer; any damaged byte is found on open.
@Suite("sealed segment file")
struct PacketFileTests {
    func write(_ path: String, packets: Int) throws -> (checksum: UInt32, bytes: Int64) {
        let w = try PacketFileWriter(path: path, params: Self.params)
        let p = Packet()
        for i in 0..<packets {
            try p.setPayload(size: 100 + i, path: path) { $0.initializeMemory(as: UInt8.self, repeating: UInt8(i)) }
            p.pts = Int64(i); p.dts = Int64(i) - 1; p.duration = 1
            try w.write(p)
        }
        try w.finish()
        return (w.sealedChecksum, w.bytesWritten)
    }

    /// Parameters as a packet file's header stores them (JSON), for a small H.264 stream.
    static let params: StreamParams = {
        let json = """
            {"mediaType":0,"codecID":27,"extradata":"","format":0,"bitRate":0,"profile":100,"level":30,"width":64,"height":64,
             "sampleAspect":"1/1","fieldOrder":0,"colorRange":0,"colorPrimaries":2,"colorTransfer":2,"colorSpace":2,
             "chromaLocation":0,"videoDelay":0,"sampleRate":0,"channels":0,"channelOrder":0,"channelMask":0,"frameSize":0,
             "initialPadding":0,"trailingPadding":0,"timeBase":"1/25"}
            """
        return try! JSONDecoder().decode(StreamParams.self, from: Data(json.utf8))
    }()

    func temp() -> String { TestScratch.url.appendingPathComponent("vseg-\(UUID().uuidString.prefix(8)).vseg").path }

    @Test("a sealed file reads back every packet, with its count and checksum")
    func roundTrip() throws {
        let path = temp()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (sum, bytes) = try write(path, packets: 30)
        #expect(FileOps.size(path) == bytes)
        let r = try PacketFileReader(path: path)
        #expect(r.packetCount == 30 && r.checksum == sum)
        let p = Packet()
        var n = 0
        while try r.next(into: p) {
            #expect(p.pts == Int64(n) && p.dts == Int64(n) - 1 && p.size == 100 + n)
            n += 1
        }
        #expect(n == 30)
    }

    @Test("truncated (no trailer), a damaged trailer, or one byte flipped in the middle: refused on open",
          arguments: ["truncate", "trailer", "middle"])
    func damaged(_ how: String) throws {
        let path = temp()
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try write(path, packets: 30)
        var d = try Data(contentsOf: URL(fileURLWithPath: path))
        switch how {
        case "truncate": d = d.prefix(d.count - 7)
        case "trailer": d[d.count - 2] ^= 0x01
        default: d[d.count / 2] ^= 0x20
        }
        try d.write(to: URL(fileURLWithPath: path))
        #expect(throws: VSliceError.self) { try PacketFileReader(path: path) }
    }
}

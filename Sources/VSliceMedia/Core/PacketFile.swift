import CFFmpeg
import Foundation
import VSliceModel
import VSliceSupport

/// vslice's intermediate file: the packets of one encoded stream (a video segment, or the audio) with the
/// parameters of the encoder that made them. Written sequentially, closed with a trailer that holds the
/// packet count and an Adler-32 of everything before it, then fsynced; a file without a valid trailer is
/// incomplete and is never merged.
///
///     "VSEG" u32 version | u32 n, n bytes of JSON StreamParams
///     'P' i64 pts, i64 dts, i64 duration, u32 flags, u32 size, size bytes     (repeated)
///     'E' u64 packet count, u32 adler32
package enum PacketFile {
    package static let magic: [UInt8] = Array("VSEG".utf8)
    package static let version: UInt32 = 1
}

/// Writes a packet file; `finish()` seals and fsyncs it.
package final class PacketFileWriter {
    package let path: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private var checksum: UInt32 = 1
    package private(set) var packetCount: UInt64 = 0
    package private(set) var bytesWritten: Int64 = 0
    /// The Adler-32 written in the trailer, once `finish()` has run.
    package private(set) var sealedChecksum: UInt32 = 0

    package init(path: String, params: StreamParams) throws(VSliceError) {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 {
            throw VSliceError(.processing, "create", path: path, reason: String(cString: strerror(errno)))
        }
        let header: Data
        do { header = try JSONEncoder().encode(params) } catch {
            throw VSliceError(.processing, "encode stream parameters", path: path, reason: plainReason(error))
        }
        append(PacketFile.magic)
        append(PacketFile.version)
        append(UInt32(header.count))
        append(Array(header))
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    package func write(_ packet: Packet) throws(VSliceError) {
        let p = packet.ptr.pointee
        append([UInt8(ascii: "P")])
        append(UInt64(bitPattern: p.pts))
        append(UInt64(bitPattern: p.dts))
        append(UInt64(bitPattern: p.duration))
        append(UInt32(bitPattern: p.flags))
        append(UInt32(p.size))
        if p.size > 0, let data = p.data {
            append(UnsafeBufferPointer(start: data, count: Int(p.size)))
        }
        packetCount += 1
        if buffer.count >= 1 << 20 { try flush() }
    }

    /// Writes the trailer, flushes and fsyncs. The file is complete only after this returns.
    package func finish() throws(VSliceError) {
        append([UInt8(ascii: "E")])
        append(packetCount)
        sealedChecksum = checksum
        let sum = checksum
        var trailer: [UInt8] = []
        withUnsafeBytes(of: sum.littleEndian) { trailer.append(contentsOf: $0) }
        buffer.append(contentsOf: trailer)
        try flush()
        if fsync(fd) != 0 {
            throw VSliceError(.processing, "fsync", path: path, reason: String(cString: strerror(errno)))
        }
        close(fd)
        fd = -1
    }

    private func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { append(UnsafeBufferPointer(start: $0.bindMemory(to: UInt8.self).baseAddress, count: $0.count)) }
    }

    private func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0) }
    }

    private func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        checksum = av_adler32_update(checksum, base, bytes.count)
        buffer.append(contentsOf: bytes)
    }

    private func flush() throws(VSliceError) {
        var offset = 0
        while offset < buffer.count {
            let n = buffer.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                throw VSliceError(.processing, "write", path: path, reason: reason)
            }
            offset += n
        }
        bytesWritten += Int64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Reads a sealed packet file; `open` fails on a missing, truncated or corrupt file.
package final class PacketFileReader {
    package let path: String
    package let params: StreamParams
    package let packetCount: UInt64
    /// The Adler-32 in the trailer (verified on open).
    package let checksum: UInt32
    private let data: Data
    private var offset: Int

    package init(path: String) throws(VSliceError) {
        self.path = path
        let bytes: Data
        do { bytes = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe) } catch {
            throw VSliceError(.processing, "read segment", path: path, reason: "cannot read: \(plainReason(error))")
        }
        data = bytes
        func bad(_ why: String) -> VSliceError { VSliceError(.processing, "read segment", path: path, reason: why) }
        guard bytes.count >= 8 + 4 + 13, Array(bytes.prefix(4)) == PacketFile.magic else { throw bad("not a vslice segment file") }
        // Trailer: 'E', u64 count, u32 adler of all bytes before the trailer's checksum.
        let trailerStart = bytes.count - 13
        guard bytes[trailerStart] == UInt8(ascii: "E") else { throw bad("incomplete (no trailer)") }
        let count: UInt64 = PacketFileReader.load(bytes, trailerStart + 1)
        let stored: UInt32 = PacketFileReader.load(bytes, trailerStart + 9)
        let actual = bytes.withUnsafeBytes { raw in
            av_adler32_update(1, raw.bindMemory(to: UInt8.self).baseAddress, trailerStart + 9)
        }
        guard stored == actual else { throw bad("checksum mismatch (corrupt file)") }
        packetCount = count
        checksum = stored
        let headerLen: UInt32 = PacketFileReader.load(bytes, 8)
        guard 12 + Int(headerLen) <= trailerStart else { throw bad("bad header length") }
        do {
            params = try JSONDecoder().decode(StreamParams.self, from: bytes.subdata(in: 12..<(12 + Int(headerLen))))
        } catch { throw bad("bad header: \(plainReason(error))") }
        offset = 12 + Int(headerLen)
    }

    package static func load<T: FixedWidthInteger>(_ d: Data, _ at: Int) -> T {
        var v: T = 0
        withUnsafeMutableBytes(of: &v) { dst in
            d.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[at..<(at + MemoryLayout<T>.size)])) }
        }
        return T(littleEndian: v)
    }

    /// Reads the next packet into `packet`; false after the last one.
    package func next(into packet: Packet) throws(VSliceError) -> Bool {
        guard offset < data.count, data[offset] == UInt8(ascii: "P") else { return false }
        let pts: UInt64 = PacketFileReader.load(data, offset + 1)
        let dts: UInt64 = PacketFileReader.load(data, offset + 9)
        let dur: UInt64 = PacketFileReader.load(data, offset + 17)
        let flags: UInt32 = PacketFileReader.load(data, offset + 25)
        let size: UInt32 = PacketFileReader.load(data, offset + 29)
        let start = offset + 33
        guard start + Int(size) <= data.count else {
            throw VSliceError(.processing, "read segment", path: path, reason: "packet runs past the end")
        }
        try packet.setPayload(size: Int(size), path: path) { dst in
            data.withUnsafeBytes { raw in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[start..<(start + Int(size))])) }
        }
        packet.pts = Int64(bitPattern: pts)
        packet.dts = Int64(bitPattern: dts)
        packet.duration = Int64(bitPattern: dur)
        packet.flags = Int32(bitPattern: flags)
        offset = start + Int(size)
        return true
    }
}

import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

extension SegmentRecord {
    /// The segment's (or audio piece's) file is there, sealed, with the size, packet count and checksum the ledger
    /// recorded when it was done: a file damaged, replaced or missing since is redone, never merged.
    var fileIsIntact: Bool {
        var st = stat()
        guard stat(file, &st) == 0, Int64(st.st_size) == fileSize else { return false }
        guard let reader = try? PacketFileReader(path: file) else { return false }
        // Frames recorded when it was done (a filter may change the count), else the plan's.
        return Int(reader.packetCount) == (framesDone ?? framesPlanned) && Int64(reader.checksum) == fileChecksum
    }
}

extension TaskRecord {
    /// The merged file before it is published: beside the output, named after the task.
    var partFile: String { TaskPaths.partFile(output: output, taskId: id) }
}

extension SegmentRecord {
    /// An analysis artifact is there with the size and Adler-32 the ledger recorded when it was done.
    var artifactIsIntact: Bool {
        guard let (size, sum) = ArtifactFile.measure(file) else { return false }
        return size == fileSize && Int64(sum) == fileChecksum
    }
}

/// An artifact of the context steps: any bytes, sealed by size and Adler-32.
enum ArtifactFile {
    static func measure(_ path: String) -> (Int64, UInt32)? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let sum = data.withUnsafeBytes { raw in
            raw.isEmpty ? 1 : Adler32.update(1, raw.bindMemory(to: UInt8.self).baseAddress!, raw.count)
        }
        return (Int64(data.count), sum)
    }

    static func signature(bytes: Int64, checksum: UInt32) -> String { "\(bytes):\(String(checksum, radix: 16))" }

    static func signature(_ path: String) -> String? { measure(path).map { signature(bytes: $0.0, checksum: $0.1) } }
}

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

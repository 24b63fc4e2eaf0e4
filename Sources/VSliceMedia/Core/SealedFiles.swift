import Foundation
import VSliceModel
import VSliceSupport

extension SegmentTraceRecord {
    /// True when the record is a done one and its segment file is there, sealed, with the recorded size
    /// and checksum.
    public func sealedFileMatches(workDir: String) -> Bool {
        guard status == .done, let file, let bytes, let checksum else { return false }
        let path = (workDir as NSString).appendingPathComponent(file)
        guard FileOps.size(path) == bytes, let reader = try? PacketFileReader(path: path) else { return false }
        return Int64(reader.checksum) == checksum && (framesOut.map { Int(reader.packetCount) == $0 } ?? true)
    }
}

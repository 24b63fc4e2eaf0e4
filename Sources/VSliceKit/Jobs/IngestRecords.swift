import Foundation
import VSliceLedger
import VSliceMedia
import VSliceModel
import VSliceSupport

extension Ledger {
    /// Ingests the workers' trace records of the task (see `JobStore.ingestTraceRecords`), a done record's
    /// sealed file checked as the record states it.
    @discardableResult
    func ingestTraceRecords(task: TaskID, workDir: String, videoSegments: Int) throws(VSliceError) -> [SegmentTraceRecord] {
        try ingestTraceRecords(task: task, workDir: workDir, videoSegments: videoSegments) { $0.sealedFileMatches(workDir: workDir) }
    }
}

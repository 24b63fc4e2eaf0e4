import Foundation
import Testing
@testable import VSliceKit
@testable import VSliceLedger
@testable import VSliceMedia
@testable import VSliceModel
@testable import VSliceSupport

/// The interrupt callback's per-file state: I/O deadline, abandon switch.
@Suite("interrupt callback: I/O deadline and abandon")
struct WatchTests {
    func callback(_ w: WorkWatch) -> Int32 { vsliceInterruptCallback(w.opaque) }

    @Test("a blocking call that outlasts the deadline is interrupted and the work abandoned with the reason")
    func deadline() throws {
        let w = WorkWatch(ioDeadline: 0.05)
        #expect(callback(w) == 0)
        let during = w.io { () -> Int32 in
            #expect(callback(w) == 0, "interrupted before the deadline")
            Thread.sleep(forTimeInterval: 0.12)
            return callback(w)
        }
        #expect(during == 1)
        #expect(w.abandoned)
        #expect(throws: VSliceError.self) { try w.check("read packet", path: "x.mp4") }
        do { try w.check("read packet", path: "x.mp4") } catch {
            #expect(error.kind == .processing)
            #expect(error.reason.contains("longer than"))
        }
    }

    @Test("outside a blocking call, time does not count; abandon() interrupts at once")
    func abandon() {
        let w = WorkWatch(ioDeadline: 0.01)
        Thread.sleep(forTimeInterval: 0.03)
        #expect(callback(w) == 0)
        #expect(w.idleSeconds >= 0.02)
        w.madeProgress()
        #expect(w.idleSeconds < 0.02)
        w.abandon("stalled")
        #expect(callback(w) == 1)
        #expect(vsliceInterruptCallback(nil) == 0, "a file without a watch is interrupted only by an abort")
    }
}

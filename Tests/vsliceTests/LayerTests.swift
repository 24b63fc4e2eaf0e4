import Foundation
import Testing

/// `scripts/check-layers`, which `scripts/test` runs: every import of the project's sources stays within its
/// layer (CFFmpeg only in the media target, GRDB only in the ledger's, the CLI on the kit alone), and a wrong
/// one is named.
@Suite("layers: who may import what")
struct LayerTests {
    static let script = Paths.packageRoot.appendingPathComponent("scripts/check-layers").path

    @Test("the project's own sources keep every layer's imports")
    func sourcesKeepTheRule() throws {
        let r = try Proc.run("python3", [Self.script, Paths.packageRoot.appendingPathComponent("Sources").path])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        // The targets the rule speaks of are all there: a renamed folder would pass unchecked.
        for target in ["VSliceSupport", "VSliceModel", "VSliceMedia", "VSliceLedger", "VSliceKit", "vslice"] {
            #expect(FileManager.default.fileExists(atPath: Paths.packageRoot.appendingPathComponent("Sources/\(target)").path), "\(target)")
        }
    }

    @Test("an import across the layers is named with its file and line", arguments: [
        ("VSliceModel", "import CFFmpeg"), ("VSliceKit", "import GRDB"), ("vslice", "import VSliceMedia"),
        ("VSliceSupport", "@testable import VSliceModel"), ("VSliceLedger", "import VSliceMedia"),
    ])
    func wrongImportIsNamed(target: String, line: String) throws {
        let root = try Paths.scratch("layers")
        defer { try? FileManager.default.removeItem(at: root) }
        let dir = root.appendingPathComponent(target)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try "import Foundation\n\(line)\n\nlet x = 1\n".write(to: dir.appendingPathComponent("A.swift"), atomically: true, encoding: .utf8)
        let r = try Proc.run("python3", [Self.script, root.path])
        #expect(r.status == 1)
        let module = line.split(separator: " ").last.map(String.init) ?? ""
        #expect(r.stdout.contains("A.swift:2: \(target) imports \(module)"), "\(r.stdout)")
    }

    @Test("what a layer may see passes")
    func allowedImportsPass() throws {
        let root = try Paths.scratch("layers-ok")
        defer { try? FileManager.default.removeItem(at: root) }
        let files = ["VSliceMedia": "import CFFmpeg\nimport VSliceModel", "VSliceLedger": "import GRDB\nimport VSliceSupport",
                     "vslice": "import ArgumentParser\nimport VSliceKit", "VSliceKit": "import VSliceMedia\nimport Logging"]
        for (target, imports) in files {
            let dir = root.appendingPathComponent(target)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try "\(imports)\n".write(to: dir.appendingPathComponent("A.swift"), atomically: true, encoding: .utf8)
        }
        let r = try Proc.run("python3", [Self.script, root.path])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    }
}

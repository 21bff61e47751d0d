import Foundation
@_exported import TailorTestSupport

extension TestPaths {
    static func fixtureText(_ name: String) throws -> String {
        try String(contentsOf: fixtureURL(Bundle.module, name), encoding: .utf8)
    }
}

package demo

// Banner lets the black-box tests print the banner against a real cloud.
var Banner = banner
